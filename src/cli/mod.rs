//! Headless subcommands. Each renders the same `system` results the Environment tab shows.

pub mod dataset;
pub mod fetch;
pub mod jobs;
pub mod lint;

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use crate::settings::Settings;
use crate::system::checks::{self, Check, Status};
use crate::system::gpu::{self, GpuSnapshot};
use crate::system::inventory::{self, FreeReport, LeftoverGroup, PortStatus};
use crate::system::procs::{ProcessScanner, current_uid, format_age};
use crate::system::signals::LadderOptions;
use crate::units::format_bytes;

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> color_eyre::Result<()> {
    // Buffered: stdout is line-buffered, and pretty JSON is one line per value (a 100,000-file
    // dataset report would be 100,000 write calls).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// A command line for a terminal: control characters (escape sequences, newlines that could fake
/// extra lines) shown as `\xNN`, as `ps` does; any user can choose their argv.
pub(crate) fn shown(args: &[String]) -> String {
    args.iter()
        .map(|a| crate::units::escape_controls(a, false))
        .collect::<Vec<_>>()
        .join(" ")
}

fn icon(s: &Status) -> &'static str {
    match s {
        Status::Pass => "✓",
        Status::Warn => "!",
        Status::Fail => "✗",
        Status::Pending => "…",
        Status::Info => "i",
    }
}

/// A GPU snapshot with user and command line filled in for visible pids.
pub fn gpu_snapshot() -> GpuSnapshot {
    let mut snap = gpu::sample_once();
    let pids: Vec<u32> = snap
        .gpus
        .iter()
        .flat_map(|g| g.processes.iter().map(|p| p.pid))
        .collect();
    if !pids.is_empty() {
        let mut scanner = ProcessScanner::new();
        let table = scanner.scan_pids(&pids);
        let local = inventory::local_gpu_pids(&snap, &table, &mut scanner);
        inventory::enrich_gpu_with(&mut snap, &|pid| {
            let p = table.get(pid).filter(|_| local.contains(&pid))?;
            Some((p.user.to_string(), p.cmdline.to_vec()))
        });
    }
    snap
}

/// `dpgui doctor`: exit status 1 when a check fails.
pub async fn doctor(settings: &Settings, json: bool) -> color_eyre::Result<i32> {
    let snap = tokio::task::spawn_blocking(gpu::sample_once).await?;
    let mut list: Vec<Check> = checks::gather(
        settings.python.as_deref(),
        &settings.diffusion_pipe,
        snap.names(),
        settings.probe_timeout,
    )
    .await;
    list.extend(checks::config_checks(settings));
    let failed = checks::any_failed(&list);
    if json {
        print_json(&serde_json::json!({
            "ok": !failed,
            "checks": list,
            "gpus": snap,
        }))?;
    } else {
        match (&snap.driver_version, &snap.error) {
            (Some(d), _) => println!(
                "GPUs: {} (driver {d}, CUDA {})",
                snap.gpus.len(),
                snap.cuda_driver_version.as_deref().unwrap_or("n/a")
            ),
            (None, Some(e)) => println!("GPUs: none usable: {e}"),
            (None, None) => println!("GPUs: none"),
        }
        for c in &list {
            println!("{} {:<24} {}", icon(&c.status), c.title, c.detail);
            if let Some(fix) = c.fix.as_ref().filter(|_| c.status != Status::Pass) {
                println!("  {:<24} fix: {fix}", "");
            }
        }
        let n = |s: Status| list.iter().filter(|c| c.status == s).count();
        println!(
            "\n{} passed, {} warnings, {} failed",
            n(Status::Pass),
            n(Status::Warn),
            n(Status::Fail)
        );
    }
    Ok(i32::from(failed))
}

/// `dpgui gpus`
pub fn gpus(json: bool) -> color_eyre::Result<i32> {
    let snap = gpu_snapshot();
    if json {
        print_json(&snap)?;
        return Ok(0);
    }
    if snap.gpus.is_empty() {
        println!(
            "No NVIDIA GPU: {}",
            snap.error.as_deref().unwrap_or("NVML reports no GPUs")
        );
        return Ok(0);
    }
    println!(
        "driver {} · CUDA {}",
        snap.driver_version.as_deref().unwrap_or("n/a"),
        snap.cuda_driver_version.as_deref().unwrap_or("n/a")
    );
    let na = |v: Option<String>| v.unwrap_or_else(|| "n/a".into());
    for g in &snap.gpus {
        println!(
            "{:<2} {:<28} util {:>5}  mem {:>9} / {:<9}  temp {:>5}  power {} / {}",
            g.index,
            g.name,
            na(g.utilization_pct.map(|u| format!("{u}%"))),
            na(g.memory_used_bytes.map(format_bytes)),
            na(g.memory_total_bytes.map(format_bytes)),
            na(g.temperature_c.map(|t| format!("{t}°C"))),
            na(g.power_draw_w.map(|w| format!("{w:.0} W"))),
            na(g.power_limit_w.map(|w| format!("{w:.0} W"))),
        );
        for p in &g.processes {
            println!(
                "   pid {:<8} {:<10} {:>10}  {}",
                p.pid,
                p.user.as_deref().unwrap_or("?"),
                na(p.used_memory_bytes.map(format_bytes)),
                p.cmdline
                    .as_ref()
                    .map(|c| shown(c))
                    .unwrap_or_else(|| "(not visible here)".into())
            );
        }
    }
    Ok(0)
}

pub struct PortsArgs {
    pub ports: Vec<u16>,
    pub json: bool,
    pub free: Option<u32>,
    pub yes: bool,
    pub allow_other_users: bool,
}

fn print_ports(list: &[PortStatus]) {
    for p in list {
        if !p.listening {
            match (p.busy(), &p.error) {
                (false, _) => println!("{:<6} free", p.port),
                (true, Some(e)) => println!("{:<6} busy: cannot be bound ({e})", p.port),
                (true, None) => println!(
                    "{:<6} busy: cannot be bound, yet nothing listens (a connection uses it? see `ss -tanp`)",
                    p.port
                ),
            }
            continue;
        }
        for h in &p.holders {
            match h.pid {
                None => println!(
                    "{:<6} in use by uid {} ({}), pid not visible: run as root to see it",
                    p.port, h.uid, h.user
                ),
                Some(pid) => {
                    let mut flags = Vec::new();
                    if let Some(t) = &h.training {
                        flags.push(t.clone());
                    }
                    if h.orphan {
                        flags.push("ORPHAN".into());
                    }
                    if let Some(j) = &h.job {
                        flags.push(format!(
                            "dpgui job {j}{}",
                            if h.job_live { "" } else { " (supervisor gone)" }
                        ));
                    }
                    println!(
                        "{:<6} pid {pid} user {} pgid {} ppid {} age {}{}  {}",
                        p.port,
                        h.user,
                        h.pgid.unwrap_or(0),
                        h.ppid.unwrap_or(0),
                        format_age(Duration::from_secs(h.age_secs.unwrap_or(0))),
                        if flags.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", flags.join(", "))
                        },
                        shown(&h.cmdline)
                    );
                }
            }
        }
    }
}

/// `dpgui ports`
pub fn ports(settings: &Settings, a: PortsArgs) -> color_eyre::Result<i32> {
    let watched: Vec<u16> = if a.ports.is_empty() {
        settings.watched_ports.clone()
    } else {
        let mut v = a.ports.clone();
        v.dedup();
        v
    };
    let state_dir = crate::paths::state_dir();
    if let Some(pgid) = a.free {
        return free(settings, &watched, pgid, &a);
    }
    let (list, unreadable) =
        inventory::scan_ports_report(&mut ProcessScanner::new(), &watched, &state_dir);
    if a.json {
        print_json(&list)?;
    } else {
        print_ports(&list);
        if unreadable > 0 && current_uid() != 0 {
            println!(
                "({unreadable} processes of other users could not be inspected; run as root to see every holder)"
            );
        }
    }
    Ok(0)
}

/// What a stop would signal; on stderr when stdout carries JSON.
fn describe(g: &LeftoverGroup, to_stderr: bool) {
    let out = |line: String| {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    out(format!(
        "Process group {}{}: {} process(es), GPU memory {}, ports {:?}",
        g.pgid,
        if g.orphaned { " (ORPHANED)" } else { "" },
        g.members.len(),
        format_bytes(g.gpu_memory_bytes),
        g.ports
    ));
    if let Some(r) = &g.orphan_reason {
        out(format!("  {r}"));
    }
    for m in &g.members {
        out(format!(
            "  pid {:<8} {:<10} {:<16} {}",
            m.pid,
            m.user,
            m.role.clone().unwrap_or_default(),
            shown(&m.cmdline)
        ));
    }
}

pub(crate) fn ask(question: &str) -> bool {
    // On stderr, so `--json` output on stdout stays clean.
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).is_ok() && line.trim().eq_ignore_ascii_case("y")
}

fn free(settings: &Settings, watched: &[u16], pgid: u32, a: &PortsArgs) -> color_eyre::Result<i32> {
    let state_dir = crate::paths::state_dir();
    let snap = gpu_snapshot();
    let (inv, _table) = inventory::scan(
        &mut ProcessScanner::new(),
        &mut inventory::PortScanner::default(),
        watched,
        Some(&snap),
        &state_dir,
    );
    let Some(group) = inv.group(pgid).cloned() else {
        eprintln!(
            "dpgui: process group {pgid} is not a leftover training group and holds no watched port or GPU; \
             nothing was signalled (see `dpgui ports` and the Environment tab)"
        );
        return Ok(2);
    };
    if let Some(why) = &group.blocked {
        eprintln!("dpgui: refused: {why}");
        return Ok(2);
    }
    describe(&group, a.json);
    if group.other_user {
        if current_uid() != 0 {
            eprintln!("dpgui: group {pgid} has processes of another user; only root can end them");
            return Ok(2);
        }
        if !a.allow_other_users {
            eprintln!(
                "dpgui: group {pgid} has processes of another user; add --allow-other-users to confirm"
            );
            return Ok(2);
        }
    }
    if !a.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!("dpgui: not a terminal: pass --yes to end group {pgid} from a script");
            return Ok(2);
        }
        if !ask(&format!(
            "Send SIGTERM to these {} process(es), SIGKILL after {}s?",
            group.members.len(),
            settings.stop_grace.as_secs_f64()
        )) {
            println!("nothing was signalled");
            return Ok(1);
        }
    }
    let opts = LadderOptions {
        grace: settings.stop_grace,
        allow_other_users: a.allow_other_users,
        ..Default::default()
    };
    let report: FreeReport = inventory::free_group(&group, opts, &mut || Some(gpu::sample_once()));
    if a.json {
        print_json(&report)?;
    } else {
        for o in &report.outcomes {
            let mut what = o.fate.describe().to_string();
            if let Some(e) = &o.error {
                what.push_str(&format!(" ({e})"));
            }
            println!("  pid {:<8} {what}", o.pid);
        }
        println!("{}", report.headline());
    }
    Ok(if report.all_gone() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_argv_are_escaped() {
        let argv = vec!["evil\u{1b}[2J".to_string(), "a\nfake pid 1".to_string()];
        assert_eq!(shown(&argv), "evil\\x1b[2J a\\x0afake pid 1");
        assert_eq!(shown(&["plain".into(), "ü".into()]), "plain ü");
    }
}
