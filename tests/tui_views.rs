//! The dashboard without a terminal: snapshots of the Environment tab (80x24 and 160x48; 0, 1
//! and 8 GPUs; no NVML), the Jobs tab (list, launch dialog, job view with real log files),
//! overlays, tiny terminals, and the keys the help promises.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;

use dpgui::system::checks::{Check, Status};
use dpgui::system::gpu::{GpuFeed, GpuHistory, fake_gpus, no_nvml_snapshot};
use dpgui::system::inventory::{Holder, Inventory, LeftoverGroup, Member, PortStatus};
use dpgui::tui::app::{AppInfo, Command, Event, Overlay, Panel, State, Tab, update};
use dpgui::tui::views;

mod common;

use common::screen::{TINY_SIZES, render, text as screen};

fn feed(n: Option<usize>) -> GpuFeed {
    let snap = match n {
        Some(n) => fake_gpus(n),
        None => no_nvml_snapshot(
            "NVML not available: libnvidia-ml.so.1: cannot open shared object file: No such file or directory (is the NVIDIA driver installed?)",
        ),
    };
    let mut history = GpuHistory::new(300);
    // A deterministic rising history so the sparkline has a shape.
    for step in 0..40u32 {
        let mut s = snap.clone();
        for g in &mut s.gpus {
            g.utilization_pct = g.utilization_pct.map(|_| (step * 5 + g.index * 11) % 101);
        }
        history.push(&s);
    }
    GpuFeed {
        snapshot: Some(snap),
        history,
        samples: 40,
    }
}

fn train_cmd(rank: u32) -> Vec<String> {
    format!("/venv/bin/python -u train.py --local_rank={rank} --deepspeed --config /home/alice/flux.toml --master_port=29500")
        .split(' ')
        .map(str::to_owned)
        .collect()
}

fn inventory() -> Inventory {
    let rank0 = Holder {
        pid: Some(20000),
        uid: 1000,
        user: "alice".into(),
        cmdline: train_cmd(0),
        pgid: Some(19990),
        ppid: Some(1),
        started: Some("2026-11-29T09:12:44Z".into()),
        age_secs: Some(3 * 3600 + 240),
        orphan: true,
        job: None,
        job_live: false,
        training: Some("rank 0".into()),
        addresses: vec!["0.0.0.0".into()],
        start_ticks: Some(123),
    };
    let hidden = Holder {
        pid: None,
        uid: 1001,
        user: "bob".into(),
        cmdline: vec![],
        pgid: None,
        ppid: None,
        started: None,
        age_secs: None,
        orphan: false,
        job: None,
        job_live: false,
        training: None,
        addresses: vec!["::".into()],
        start_ticks: None,
    };
    let member = |pid: u32, rank: u32| Member {
        pid,
        start_ticks: 123,
        ppid: 1,
        uid: 1000,
        user: "alice".into(),
        cmdline: train_cmd(rank),
        role: Some(format!("rank {rank}")),
        age_secs: 3 * 3600 + 240,
        rss_bytes: 9 << 30,
        gpu_memory_bytes: 11_000 << 20,
        ports: if rank == 0 { vec![29500] } else { vec![] },
    };
    let group = LeftoverGroup {
        pgid: 19990,
        members: vec![member(20000, 0), member(20001, 1)],
        orphaned: true,
        orphan_reason: Some("rank 0 (pid 20000): its launcher is gone".into()),
        gpu_memory_bytes: 22_000 << 20,
        ports: vec![29500],
        other_user: false,
        dead_job: None,
        config: Some("/home/alice/flux.toml".into()),
        blocked: None,
    };
    Inventory {
        ports: vec![
            PortStatus {
                port: 29500,
                listening: true,
                holders: vec![rank0],
                bindable: None,
                error: None,
            },
            PortStatus {
                port: 29501,
                listening: false,
                holders: vec![],
                bindable: Some(true),
                error: None,
            },
            PortStatus {
                port: 29502,
                listening: true,
                holders: vec![hidden],
                bindable: None,
                error: None,
            },
        ],
        pid_groups: [(20000, 19990), (20001, 19990)].into_iter().collect(),
        // Both ranks were confirmed local GPU processes (they hold /dev/nvidia*).
        gpu_procs: [20000u32, 20001]
            .into_iter()
            .map(|pid| (pid, ("alice".to_string(), train_cmd(pid - 20000))))
            .collect(),
        leftovers: vec![group],
        host: Some(dpgui::system::host::HostSummary {
            hostname: "gpu-box".into(),
            cpus: 64,
            cpu_pct: Some(12.5),
            memory_used_bytes: 100 << 30,
            memory_total_bytes: 512 << 30,
            load1: 3.25,
        }),
        ..Default::default()
    }
}

fn checks() -> Vec<Check> {
    let c = |id, title: &str, status, detail: &str, fix: Option<&str>| Check {
        id,
        title: title.into(),
        status,
        detail: detail.into(),
        fix: fix.map(str::to_owned),
    };
    vec![
        c(
            "python.found",
            "Python interpreter",
            Status::Pass,
            "/venv/bin/python (from $VIRTUAL_ENV)",
            None,
        ),
        c(
            "python.version",
            "Python version",
            Status::Fail,
            "Python 3.11.7: diffusion-pipe needs Python >= 3.12",
            Some("uv venv --python 3.12"),
        ),
        c(
            "torch.installed",
            "torch",
            Status::Pending,
            "probing…",
            None,
        ),
        c(
            "checkout.present",
            "diffusion-pipe checkout",
            Status::Warn,
            "vendor/diffusion-pipe does not exist",
            Some(
                "git clone --recurse-submodules https://github.com/tdrussell/diffusion-pipe vendor/diffusion-pipe",
            ),
        ),
    ]
}

fn state(gpus: Option<usize>, w: u16, h: u16) -> State {
    let mut s = State::new(AppInfo::default());
    s.clock = Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000));
    s.size = Rect::new(0, 0, w, h);
    s.env.gpu = Some(feed(gpus));
    s.env.inventory = Some(inventory());
    s.env.checks = Some(checks());
    s
}

#[test]
fn environment_tab_snapshots() {
    for (name, gpus) in [
        ("0gpu", Some(0)),
        ("1gpu", Some(1)),
        ("8gpu", Some(8)),
        ("nonvml", None),
    ] {
        for (w, h) in [(80, 24), (160, 48)] {
            let t = render(&state(gpus, w, h));
            insta::assert_snapshot!(format!("env_{name}_{w}x{h}"), t.backend());
        }
    }
}

#[test]
fn the_screen_says_what_matters() {
    let text = screen(&render(&state(None, 160, 48)));
    assert!(text.contains("No NVIDIA GPU"), "{text}");
    assert!(text.contains("libnvidia-ml.so.1"));
    assert!(text.contains("ORPHAN"));
    assert!(text.contains("in use by uid 1001 (bob), pid not visible"));
    assert!(text.contains("29501  free"));
    let text = screen(&render(&state(Some(8), 160, 48)));
    assert!(text.contains("n/a"), "unsupported metrics show n/a");
    assert!(text.contains("[leftover, orphaned]"));
}

#[test]
fn overlays_snapshot() {
    let mut s = state(Some(1), 100, 30);
    update(&mut s, key('?'));
    insta::assert_snapshot!("help_overlay", render(&s).backend());
    update(&mut s, code(KeyCode::Esc));
    s.env.focus = Panel::Leftovers.index();
    update(&mut s, key('x'));
    assert!(matches!(s.overlay, Overlay::ConfirmStop { .. }));
    insta::assert_snapshot!("confirm_stop", render(&s).backend());
}

#[test]
fn tiny_terminals_do_not_panic() {
    for (w, h) in [(20, 5), (1, 1), (0, 0), (10, 3), (40, 12), (200, 2)] {
        for gpus in [None, Some(8)] {
            let mut s = state(gpus, w, h);
            render(&s);
            update(&mut s, key('?'));
            render(&s);
            update(&mut s, code(KeyCode::Esc));
            s.env.focus = Panel::Leftovers.index();
            update(&mut s, key('x'));
            render(&s);
        }
    }
}

fn key(c: char) -> Event {
    code(KeyCode::Char(c))
}

fn code(c: KeyCode) -> Event {
    Event::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

#[test]
fn keys_do_what_the_help_says() {
    let mut s = state(Some(2), 120, 40);
    for (k, tab) in [
        ('2', Tab::Datasets),
        ('3', Tab::Config),
        ('4', Tab::Jobs),
        ('1', Tab::Environment),
    ] {
        update(&mut s, key(k));
        assert_eq!(s.tab, tab);
    }
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(s.tab, Tab::Datasets);
    update(&mut s, code(KeyCode::BackTab));
    update(&mut s, code(KeyCode::BackTab));
    assert_eq!(s.tab, Tab::Jobs);
    update(&mut s, key('1'));

    // Panels and rows.
    assert_eq!(s.focus(), Panel::Gpus);
    update(&mut s, key('l'));
    assert_eq!(s.focus(), Panel::Ports);
    update(&mut s, code(KeyCode::Left));
    update(&mut s, code(KeyCode::Left));
    assert_eq!(s.focus(), Panel::Checks);
    update(&mut s, key('h'));
    update(&mut s, key('h'));
    update(&mut s, key('h'));
    assert_eq!(s.focus(), Panel::Gpus);
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Down));
    assert_eq!(s.selected(Panel::Gpus), 2);
    update(&mut s, key('k'));
    assert_eq!(s.selected(Panel::Gpus), 1);
    update(&mut s, key('G'));
    assert_eq!(s.selected(Panel::Gpus), s.rows(Panel::Gpus) - 1);
    update(&mut s, key('g'));
    assert_eq!(s.selected(Panel::Gpus), 0);

    update(&mut s, code(KeyCode::Enter));
    assert_eq!(s.overlay, Overlay::Details);
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.overlay, Overlay::None);

    assert_eq!(update(&mut s, key('r')), vec![Command::RunChecks]);
    assert!(s.env.probe_running);
    assert_eq!(
        update(&mut s, key('r')),
        vec![],
        "no second probe while one runs"
    );
    assert_eq!(update(&mut s, key('R')), vec![Command::Refresh]);

    // x on a free port explains instead of acting; on the held one it confirms the group.
    s.env.focus = Panel::Ports.index();
    s.env.selected[Panel::Ports.index()] = 1;
    update(&mut s, key('x'));
    assert_eq!(s.overlay, Overlay::None);
    assert!(s.status.as_ref().unwrap().1.contains("29501 is free"));
    s.env.selected[Panel::Ports.index()] = 2;
    update(&mut s, key('x'));
    assert!(s.status.as_ref().unwrap().1.contains("pid is not visible"));

    s.env.focus = Panel::Leftovers.index();
    update(&mut s, key('x'));
    let Overlay::ConfirmStop { group, .. } = &s.overlay else {
        panic!("no confirmation")
    };
    assert_eq!(group.pgid, 19990);
    assert_eq!(update(&mut s, key('n')), vec![]);
    assert_eq!(s.overlay, Overlay::None);
    update(&mut s, key('x'));
    let cmds = update(&mut s, key('y'));
    assert!(
        matches!(&cmds[..], [Command::Stop { group, allow_other_users: false }] if group.pgid == 19990)
    );
    assert!(matches!(
        s.overlay,
        Overlay::Stopping {
            pgid: 19990,
            pids: 2
        }
    ));

    let mut s = state(Some(2), 120, 40);
    assert_eq!(update(&mut s, key('q')), vec![Command::Quit]);
    assert!(s.quit);
}

#[test]
fn other_users_groups_need_root_and_a_second_confirmation() {
    let mut s = state(Some(1), 120, 40);
    s.env.inventory.as_mut().unwrap().leftovers[0].other_user = true;
    s.env.focus = Panel::Leftovers.index();
    update(&mut s, key('x'));
    assert_eq!(s.overlay, Overlay::None, "not root: refused");
    assert!(s.status.as_ref().unwrap().1.contains("only root"));
    s.info.is_root = true;
    update(&mut s, key('x'));
    // The warning is on screen at a common size and a small one.
    for (w, h) in [(120, 36), (80, 24)] {
        s.size = Rect::new(0, 0, w, h);
        let text = screen(&render(&s));
        assert!(text.contains("ANOTHER USER'S PROCESSES (alice)"), "{text}");
        assert!(text.contains("20000 20001"), "every pid listed:\n{text}");
    }
    assert_eq!(update(&mut s, key('y')), vec![], "first y only asks again");
    assert!(matches!(
        s.overlay,
        Overlay::ConfirmStop { second: true, .. }
    ));
    assert!(screen(&render(&s)).contains("press Y (capital)"));
    // A held key repeating, or a second lower-case y, does not confirm.
    let mut repeat = KeyEvent::new(KeyCode::Char('Y'), KeyModifiers::SHIFT);
    repeat.kind = crossterm::event::KeyEventKind::Repeat;
    assert_eq!(update(&mut s, Event::Key(repeat)), vec![]);
    assert_eq!(update(&mut s, key('y')), vec![]);
    assert!(matches!(
        s.overlay,
        Overlay::ConfirmStop { second: true, .. }
    ));
    let cmds = update(&mut s, key('Y'));
    assert!(matches!(
        &cmds[..],
        [Command::Stop {
            allow_other_users: true,
            ..
        }]
    ));
}

#[test]
fn mouse_selects_tabs_and_rows() {
    let mut s = state(Some(1), 160, 48);
    let rects = views::tab_rects(Rect::new(0, 0, 160, 1));
    let click = |x, y| {
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: x,
            row: y,
            modifiers: KeyModifiers::NONE,
        })
    };
    update(&mut s, click(rects[2].x + 1, 0));
    assert_eq!(s.tab, Tab::Config);
    update(&mut s, click(rects[0].x + 1, 0));
    assert_eq!(s.tab, Tab::Environment);
    // Click the third port row (29502) in the Ports panel, found on the rendered screen.
    let text = screen(&render(&s));
    let y = text
        .lines()
        .position(|l| l.contains("in use by uid 1001"))
        .unwrap() as u16;
    update(&mut s, click(3, y));
    assert_eq!(s.focus(), Panel::Ports);
    assert_eq!(s.selected(Panel::Ports), 2);
}

#[test]
fn gpu_processes_get_their_user_and_command_from_the_process_scan() {
    let mut s = state(Some(4), 120, 40);
    // GPU 3's process (pid 20003) comes from NVML without user or command line.
    let pid = 20003;
    let mut inv = inventory();
    inv.gpu_procs.insert(
        pid,
        ("carol".into(), vec!["python".into(), "train.py".into()]),
    );
    update(&mut s, Event::Inventory(Box::new(inv)));
    update(&mut s, Event::Gpu(feed(Some(4))));
    let snap = s.env.gpu.as_ref().unwrap().snapshot.as_ref().unwrap();
    let p = snap.gpus[3]
        .processes
        .iter()
        .find(|p| p.pid == pid)
        .unwrap();
    assert_eq!(p.user.as_deref(), Some("carol"));
    assert!(screen(&render(&s)).contains("carol"));
}

#[test]
fn only_confirmed_local_gpu_processes_can_be_ended_from_the_gpu_panel() {
    let mut s = state(Some(4), 120, 40);
    s.env.focus = Panel::Gpus.index();
    let rows = views::environment::gpu_rows(&s);
    let row_of = |pid: u32| {
        rows.iter()
            .position(
                |r| matches!(r, views::environment::GpuRow::Process { pid: p, .. } if *p == pid),
            )
            .unwrap()
    };
    // 20003 is an NVML pid that was not confirmed as a local process (e.g. a host pid seen
    // from a container): refused, even though a local process might carry that number.
    s.env
        .inventory
        .as_mut()
        .unwrap()
        .pid_groups
        .insert(20003, 19990);
    s.env.selected[Panel::Gpus.index()] = row_of(20003);
    update(&mut s, key('x'));
    assert_eq!(s.overlay, Overlay::None);
    assert!(
        s.status
            .as_ref()
            .unwrap()
            .1
            .contains("not a process visible here")
    );
    s.env.selected[Panel::Gpus.index()] = row_of(20000);
    update(&mut s, key('x'));
    assert!(matches!(&s.overlay, Overlay::ConfirmStop { group, .. } if group.pgid == 19990));
}

// ---------------------------------------------------------------------------------------------
// Jobs tab

use dpgui::jobs::journal::{JobState, Journal, ProgressSummary, RankRecord};
use dpgui::jobs::launch::{Finding, Severity};
use dpgui::jobs::store::JobView;
use dpgui::trainer::launch::{JobOptions, LaunchPlan};
use dpgui::trainer::progress::Progress;
use dpgui::tui::jobs::{JobLogs, LaunchDialog, LaunchStep, Review, Shared};

const NOW: u64 = 1_795_000_000;

fn journal(id: &str, state: JobState, gpus: &[u32]) -> Journal {
    Journal {
        id: id.into(),
        config: "/home/alice/loras/flux_portrait.toml".into(),
        model_type: Some("flux".into()),
        gpus: gpus.to_vec(),
        port: 29517,
        cpu_ranks: false,
        options: JobOptions::default(),
        plan: LaunchPlan {
            program: "/home/alice/dp/venv/bin/deepspeed".into(),
            args: format!(
                "--include localhost:{} --master_port 29517 train.py --deepspeed --config /home/alice/loras/flux_portrait.toml --master_port 29517",
                gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            )
            .split(' ')
            .map(str::to_owned)
            .collect(),
            cwd: "/home/alice/dp/diffusion-pipe".into(),
            env: vec![],
        },
        output_dir: Some("/data/out/flux_portrait".into()),
        epochs: Some(4),
        max_steps: None,
        created: NOW - 11_100,
        boot_id: None,
        state,
        supervisor: None,
        launcher: None,
        pgid: Some(19990),
        started: Some(NOW - 11_040),
        ranks: gpus
            .iter()
            .enumerate()
            .map(|(i, _)| RankRecord {
                local_rank: Some(i as u32),
                pid: 20000 + i as u32,
                start_ticks: Some(123),
                log: None,
            })
            .collect(),
        run_dir: Some("/data/out/flux_portrait/20261129_09-12-44".into()),
        progress: ProgressSummary {
            epoch: Some(2),
            step: Some(150),
            total_steps: Some(400),
            steps_per_epoch: Some(100),
            loss: Some(0.0734),
            iter_time: Some(1.0),
            eta_secs: Some(250),
            complete: false,
            saved: vec!["epoch1".into()],
            phase: None,
        },
        stop: None,
        exit_code: None,
        exit_signal: None,
        ended: false,
        ended_at: None,
        reason: None,
    }
}

fn job_list(gpus: &[u32]) -> Vec<JobView> {
    let running = journal("20261129-091244-a3f", JobState::Running, gpus);
    let mut failed = journal("20261128-201502-07c", JobState::Failed, &[0]);
    failed.config = "/home/alice/loras/wan_video_very_long_config_name.toml".into();
    failed.model_type = Some("wan".into());
    failed.port = 29500;
    failed.started = Some(NOW - 90_000);
    failed.ended = true;
    failed.ended_at = Some(NOW - 89_400);
    failed.exit_code = Some(1);
    failed.progress = ProgressSummary::default();
    failed.run_dir = None;
    failed.reason = Some("rank 0 could not listen on port 29500: address already in use".into());
    let mut lost = journal("20261127-110000-f00", JobState::Running, &[2, 3]);
    lost.model_type = Some("sdxl".into());
    lost.progress.loss = Some(f64::NAN);
    let dir =
        |id: &str| std::path::PathBuf::from(format!("/home/alice/.local/state/dpgui/jobs/{id}"));
    vec![
        JobView {
            dir: dir(&running.id),
            journal: running,
            state: JobState::Running,
            lost: None,
            processes: vec![],
        },
        JobView {
            dir: dir(&failed.id),
            journal: failed,
            state: JobState::Failed,
            lost: None,
            processes: vec![],
        },
        JobView {
            dir: dir(&lost.id),
            journal: lost,
            state: JobState::Lost,
            lost: Some("supervisor lost, 2 processes of this job still running".into()),
            processes: vec![],
        },
    ]
}

fn jobs_state(w: u16, h: u16) -> State {
    let mut s = state(Some(8), w, h);
    s.tab = Tab::Jobs;
    s.jobs.loaded = true;
    s.jobs.list = job_list(&[0, 1]);
    s
}

#[test]
fn job_list_snapshots() {
    for (w, h) in [(80, 24), (160, 48)] {
        let mut s = jobs_state(w, h);
        s.jobs.selected = 1;
        insta::assert_snapshot!(format!("jobs_list_{w}x{h}"), render(&s).backend());
    }
    let mut s = jobs_state(100, 20);
    s.jobs.list.clear();
    insta::assert_snapshot!("jobs_list_empty", render(&s).backend());
    s.jobs.loaded = false;
    assert!(screen(&render(&s)).contains("reading jobs…"));
}

#[test]
fn job_list_says_what_matters() {
    let mut s = jobs_state(160, 48);
    let text = screen(&render(&s));
    assert!(text.contains(" 4 Jobs "), "the tab is no longer `coming`");
    assert!(!text.contains("Jobs (coming)"));
    assert!(text.contains("20261129-091244-a3f"));
    assert!(text.contains("150/400"));
    assert!(text.contains("0.0734"));
    assert!(
        text.contains("3h04m"),
        "elapsed from the frozen clock:\n{text}"
    );
    assert!(text.contains("4m"), "ETA while running");
    s.jobs.selected = 2;
    let text = screen(&render(&s));
    assert!(text.contains("supervisor lost, 2 processes"), "{text}");
}

fn review() -> Review {
    let finding = |severity, message: &str, fix: Option<&str>| Finding {
        severity,
        message: message.into(),
        fix: fix.map(str::to_owned),
        leftover_pgids: vec![],
    };
    Review {
        findings: vec![
            finding(Severity::Ok, "config /home/alice/loras/flux_portrait.toml parses (flux, 4 epochs)", None),
            finding(
                Severity::Warn,
                "GPU 1 has 11.2 GiB in use by another process (pid 20001)",
                Some("end it from the Environment tab, or pick another GPU"),
            ),
            finding(
                Severity::Fail,
                "diffusion-pipe checkout /home/alice/dp/diffusion-pipe lacks its submodules",
                Some("git -C /home/alice/dp/diffusion-pipe submodule update --init --recursive"),
            ),
        ],
        failed: true,
        command: Some("/home/alice/dp/venv/bin/deepspeed --include localhost:0,1 --master_port 29517 train.py --deepspeed --config /home/alice/loras/flux_portrait.toml --master_port 29517".into()),
        cwd: Some("/home/alice/dp/diffusion-pipe".into()),
        env: vec![
            ("NCCL_P2P_DISABLE".into(), "1".into()),
            ("DPGUI_JOB".into(), "20261129-091244-a3f".into()),
        ],
        port: Some(29517),
    }
}

fn dialog(step: LaunchStep) -> LaunchDialog {
    let mut d = LaunchDialog::new(
        vec![
            "/home/alice/loras/flux_portrait.toml".into(),
            "/home/alice/loras/wan_video.toml".into(),
        ],
        Some(8),
    );
    d.step = step;
    d.config = Some("/home/alice/loras/flux_portrait.toml".into());
    d.gpus[1].1 = true;
    d.review = Some(review());
    d
}

#[test]
fn launch_dialog_snapshots() {
    let mut s = jobs_state(100, 30);
    s.jobs.launch = Some(dialog(LaunchStep::Review));
    insta::assert_snapshot!("jobs_launch_review", render(&s).backend());
    let text = screen(&render(&s));
    assert!(text.contains("✗ diffusion-pipe checkout"), "{text}");
    assert!(text.contains("fix the ✗ items"));
    assert!(text.contains("NCCL_P2P_DISABLE=1"));
    // Passed: Enter launches.
    let d = s.jobs.launch.as_mut().unwrap();
    d.review.as_mut().unwrap().failed = false;
    d.review.as_mut().unwrap().findings.pop();
    assert!(screen(&render(&s)).contains("Enter launch · r re-check · Esc back"));
    s.jobs.launch.as_mut().unwrap().starting = true;
    assert!(screen(&render(&s)).contains("starting…"));
    s.jobs.launch.as_mut().unwrap().review = None;
    s.jobs.launch.as_mut().unwrap().starting = false;
    assert!(screen(&render(&s)).contains("checking…"));

    s.jobs.launch = Some(dialog(LaunchStep::Gpus));
    let text = screen(&render(&s));
    assert!(text.contains("[x] GPU 0  H100 80GB HBM3"), "{text}");
    assert!(text.contains("[x] GPU 1"));
    assert!(text.contains("[ ] GPU 2"));
    s.env.gpu = Some(feed(None));
    assert!(screen(&render(&s)).contains("[x] rank 0 (CPU: no NVIDIA GPU)"));

    s.jobs.launch = Some(dialog(LaunchStep::Options));
    assert!(screen(&render(&s)).contains("[ ] cache only (--cache_only)"));
    let mut d = dialog(LaunchStep::Config);
    d.configs.clear();
    s.jobs.launch = Some(d);
    assert!(screen(&render(&s)).contains("no configs found"));
    s.jobs.launch.as_mut().unwrap().typing = Some("runs/my.toml".into());
    assert!(screen(&render(&s)).contains("path: runs/my.toml"));
}

fn step_line(step: u64) -> String {
    let loss = 0.2 / (1.0 + step as f64 / 40.0) + 0.01 * ((step * 7919 % 13) as f64 / 13.0);
    format!("steps: {step} loss: {loss:.4} iter time (s): 1.000 samples/sec: 4.000")
}

/// A job dir with a launcher log and `ranks` rank logs, opened and polled once.
fn job_logs(dir: &std::path::Path, id: &str, ranks: u32, failure: Option<(u32, &str)>) -> JobLogs {
    use std::io::Write;
    std::fs::create_dir_all(dir.join("ranks")).unwrap();
    let mut launcher = String::new();
    for r in 0..ranks {
        launcher.push_str(&format!(
            "[2026-11-29 09:12:{:02},001] [INFO] [launch.py:256:main] process {} spawned with command: ['/home/alice/dp/venv/bin/python', '-u', 'train.py', '--local_rank={r}', '--deepspeed']\n",
            10 + r,
            20000 + r
        ));
    }
    std::fs::write(dir.join("launcher.log"), launcher).unwrap();
    for r in 0..ranks {
        let mut text = String::new();
        text.push_str(&format!("[rank{r}]: Global batch size = {}\n", 4 * ranks));
        for step in 1..=40u64 {
            if r == 0 {
                text.push_str(&step_line(step));
                text.push('\n');
            } else {
                text.push_str(&format!("[rank{r}] step {step} done\n"));
            }
        }
        text.push_str("\tindented by a tab, then a bell\x07 and a NUL\0 shown escaped\n");
        text.push_str(&format!(
            "a very long line from rank {r}: {}\n",
            "x".repeat(400)
        ));
        std::fs::write(dir.join(format!("ranks/20260101000000_rank{r}.log")), text).unwrap();
    }
    let mut logs = JobLogs::open(id, dir);
    if let Some((rank, line)) = failure {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(format!("ranks/20260101000000_rank{rank}.log")))
            .unwrap();
        writeln!(f, "{line}").unwrap();
    }
    logs.poll();
    let mut p = Progress::default();
    for step in 1..=100 {
        p.feed(&step_line(step));
    }
    p.feed("Started new epoch: 2");
    for step in 101..=150 {
        p.feed(&step_line(step));
    }
    logs.set_history(p);
    logs
}

fn view_state(
    w: u16,
    h: u16,
    ranks: u32,
    failure: Option<(u32, &str)>,
) -> (State, tempfile::TempDir) {
    let gpus: Vec<u32> = (0..ranks).collect();
    let mut s = state(Some(8), w, h);
    s.tab = Tab::Jobs;
    s.jobs.loaded = true;
    s.jobs.list = job_list(&gpus);
    let dir = tempfile::tempdir().unwrap();
    let logs = job_logs(dir.path(), "20261129-091244-a3f", ranks, failure);
    s.jobs.logs = Some(Shared::new(logs));
    (s, dir)
}

#[test]
fn job_view_snapshots() {
    let (s, _dir) = view_state(
        120,
        40,
        2,
        Some((
            1,
            "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        )),
    );
    let t = render(&s);
    insta::assert_snapshot!("jobs_view_2_ranks_120x40", t.backend());
    let text = screen(&t);
    assert!(text.contains("rank 0 · GPU 0 · 10.7 GiB 63%"), "{text}");
    assert!(text.contains("launcher"));
    assert!(text.contains("The GPU ran out of memory"));
    assert!(text.contains("epoch 2/4"));
    assert!(text.contains("step 150/400"));
    assert!(text.contains("\\x07"), "control characters are escaped");
    assert!(!text.contains(std::env::temp_dir().to_str().unwrap()));

    let (mut s, _dir) = view_state(
        200,
        60,
        8,
        Some((
            0,
            "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. port: 29500, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use",
        )),
    );
    s.jobs.focus = 3;
    let t = render(&s);
    insta::assert_snapshot!("jobs_view_8_ranks_200x60", t.backend());
    let text = screen(&t);
    assert!(text.contains("port 29500 now: pid 20000 (alice)"), "{text}");
    assert!(text.contains("rank 7"));

    // Zoom, scroll, search prompt, search hit.
    s.jobs.zoom = true;
    {
        let logs = s.jobs.logs.as_ref().unwrap();
        let mut l = logs.lock();
        let pane = &mut l.panes[3];
        pane.scroll_by(5);
        pane.hit = Some(pane.tailer.buffer().len() - 8);
    }
    s.jobs.search = Some("step 3".into());
    let text = screen(&render(&s));
    assert!(!text.contains("rank 4"), "zoom shows only the focused pane");
    assert!(text.contains("/step 3"), "{text}");
    s.jobs.search = None;
    let text = screen(&render(&s));
    assert!(text.contains("↑ 5 lines up"), "{text}");
}

#[test]
fn jobs_tab_survives_tiny_terminals() {
    let (mut s, _dir) = view_state(
        40,
        12,
        8,
        Some((2, "torch.OutOfMemoryError: CUDA out of memory.")),
    );
    for (w, h) in TINY_SIZES {
        s.size = Rect::new(0, 0, w, h);
        for zoom in [false, true] {
            s.jobs.zoom = zoom;
            render(&s);
        }
        let logs = s.jobs.logs.take();
        render(&s);
        s.jobs.list.clear();
        render(&s);
        s.jobs.list = job_list(&[0, 1]);
        for step in [
            LaunchStep::Config,
            LaunchStep::Gpus,
            LaunchStep::Options,
            LaunchStep::Review,
        ] {
            s.jobs.launch = Some(dialog(step));
            render(&s);
        }
        s.jobs.launch = None;
        s.jobs.logs = logs;
    }
}

#[test]
fn jobs_keys_do_what_the_help_says() {
    let (mut s, _dir) = view_state(120, 40, 2, None);
    let logs = s.jobs.logs.take();
    // List.
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Down));
    assert_eq!(s.jobs.selected, 2);
    update(&mut s, key('k'));
    assert_eq!(s.jobs.selected, 1);
    update(&mut s, key('g'));
    assert_eq!(s.jobs.selected, 0);
    update(&mut s, key('G'));
    assert_eq!(s.jobs.selected, 2);
    update(&mut s, code(KeyCode::Home));
    assert!(matches!(
        &update(&mut s, key('l'))[..],
        [Command::OpenJob { .. }]
    ));
    assert!(matches!(
        &update(&mut s, code(KeyCode::Enter))[..],
        [Command::OpenJob { .. }]
    ));
    assert_eq!(update(&mut s, key('n')), vec![Command::NewLaunch]);
    update(&mut s, key('x'));
    assert!(matches!(s.overlay, Overlay::ConfirmJobStop { .. }));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('K'));
    assert!(matches!(s.overlay, Overlay::ConfirmJobStop { .. }));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('s'));
    assert!(matches!(s.overlay, Overlay::ConfirmJobStop { .. }));
    update(&mut s, code(KeyCode::Esc));
    assert!(matches!(
        &update(&mut s, key('c'))[..],
        [Command::StopJob { .. }]
    ));

    // Job view.
    s.jobs.logs = logs;
    let n = s.jobs.logs.as_ref().unwrap().lock().panes.len();
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(s.tab, Tab::Jobs, "Tab moves between panes here");
    assert_eq!(s.jobs.focus, 1);
    update(&mut s, code(KeyCode::Right));
    assert_eq!(s.jobs.focus, 2);
    update(&mut s, code(KeyCode::Left));
    update(&mut s, code(KeyCode::BackTab));
    assert_eq!(s.jobs.focus, 0);
    update(&mut s, key('L'));
    assert_eq!(s.jobs.focus, n - 1);
    update(&mut s, key('z'));
    assert!(s.jobs.zoom);
    update(&mut s, code(KeyCode::Enter));
    assert!(!s.jobs.zoom);
    s.jobs.focus = 0;
    let scroll = |s: &State| s.jobs.logs.as_ref().unwrap().lock().panes[0].scroll;
    update(&mut s, key('k'));
    update(&mut s, code(KeyCode::Up));
    assert_eq!(scroll(&s), 2);
    update(&mut s, key('j'));
    assert_eq!(scroll(&s), 1);
    update(&mut s, code(KeyCode::PageUp));
    assert!(scroll(&s) > 1);
    update(&mut s, code(KeyCode::PageDown));
    assert_eq!(scroll(&s), 1);
    update(&mut s, key('g'));
    assert!(scroll(&s) > 10);
    update(&mut s, key('G'));
    assert_eq!(scroll(&s), 0);
    update(&mut s, key('g'));
    update(&mut s, key('f'));
    assert_eq!(scroll(&s), 0);
    update(&mut s, key('/'));
    for c in "steps: 3".chars() {
        update(&mut s, key(c));
    }
    assert!(screen(&render(&s)).contains("/steps: 3"));
    update(&mut s, code(KeyCode::Enter));
    let hit = s.jobs.logs.as_ref().unwrap().lock().panes[0].hit;
    assert!(hit.is_some());
    update(&mut s, key('n'));
    let next = s.jobs.logs.as_ref().unwrap().lock().panes[0].hit;
    assert_ne!(next, hit);
    update(&mut s, key('N'));
    assert_eq!(s.jobs.logs.as_ref().unwrap().lock().panes[0].hit, hit);
    update(&mut s, code(KeyCode::Esc));
    assert!(s.jobs.logs.is_none(), "Esc: back to the list");

    // Launch dialog.
    let mut d = dialog(LaunchStep::Config);
    d.config = None;
    d.gpus.iter_mut().for_each(|g| g.1 = false);
    s.jobs.launch = Some(d);
    update(&mut s, key('j'));
    assert_eq!(s.jobs.launch.as_ref().unwrap().config_sel, 1);
    update(&mut s, code(KeyCode::Up));
    update(&mut s, key('/'));
    assert!(s.jobs.launch.as_ref().unwrap().typing.is_some());
    update(&mut s, code(KeyCode::Esc));
    assert!(s.jobs.launch.is_some(), "Esc stops typing only");
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Gpus);
    update(&mut s, key(' '));
    assert_eq!(s.jobs.launch.as_ref().unwrap().ticked(), vec![0]);
    update(&mut s, key('a'));
    assert_eq!(s.jobs.launch.as_ref().unwrap().ticked().len(), 8);
    update(&mut s, code(KeyCode::BackTab));
    assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Config);
    update(&mut s, code(KeyCode::Enter));
    update(&mut s, code(KeyCode::Enter));
    assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Options);
    update(&mut s, key(' '));
    assert!(s.jobs.launch.as_ref().unwrap().options.resume != Default::default());
    let cmds = update(&mut s, code(KeyCode::Enter));
    assert!(matches!(&cmds[..], [Command::Preflight { .. }]));
    update(&mut s, Event::Review(Box::new(review())));
    assert_eq!(
        update(&mut s, code(KeyCode::Enter)),
        vec![],
        "a ✗ blocks the launch"
    );
    assert!(matches!(
        &update(&mut s, key('r'))[..],
        [Command::CancelLaunch, Command::Preflight { .. }]
    ));
    let mut ok = review();
    ok.failed = false;
    update(&mut s, Event::Review(Box::new(ok)));
    assert_eq!(update(&mut s, key('y')), vec![Command::Launch]);
    s.jobs.launch.as_mut().unwrap().starting = false;
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.jobs.launch.as_ref().unwrap().step, LaunchStep::Options);
    update(&mut s, code(KeyCode::Esc));
    assert!(s.jobs.launch.is_none());

    // The help lists the Jobs keys.
    update(&mut s, key('?'));
    let text = screen(&render(&s));
    assert!(text.contains("── job view ──"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Config tab

use dpgui::trainer::lint::{Diagnostic, Severity as Sev};
use dpgui::tui::config::{ConfigEvent, ConfigOverlay, FileEntry, Focus, Kind, LintResult, Role};

const TRAIN: &str = "# Flux LoRA on my cat photos\noutput_dir = '/data/runs/cat'\ndataset = '/data/cat-dataset.toml'\nepochs = 40\nmicro_batch_size_per_gpu = 1\nsave_every_n_epochs = 5\n\n[model]\ntype = 'flux'\ndiffusers_path = '/models/FLUX.1-dev'\ndtype = 'fp9'  # typo on purpose\ntimestep_sample_method = 'logit_normal'\n\n[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n\n[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n";

fn config_files() -> Vec<FileEntry> {
    let e = |p: &str, kind, group: &str| FileEntry {
        path: p.into(),
        kind,
        group: group.into(),
    };
    vec![
        e("/data/cat.toml", Kind::Main, "recent"),
        e("/data/cat.toml", Kind::Main, "/data"),
        e("/data/cat-dataset.toml", Kind::Dataset, "/data"),
        e("/data/wan-video.toml", Kind::Main, "/data"),
        e("/data/notes.toml", Kind::Unknown, "/data"),
    ]
}

fn config_state(w: u16, h: u16) -> State {
    let mut s = state(Some(2), w, h);
    s.tab = Tab::Config;
    s.config.dirs = vec!["/data".into()];
    update(&mut s, Event::Config(ConfigEvent::Files(config_files())));
    s
}

fn diag(
    line: usize,
    column: usize,
    severity: Sev,
    code: &'static str,
    msg: &str,
    fix: Option<&str>,
) -> Diagnostic {
    Diagnostic {
        file: "/data/cat.toml".into(),
        line,
        column,
        severity,
        code,
        message: msg.into(),
        fix: fix.map(str::to_owned),
    }
}

/// cat.toml open, linted: an error on the dtype line, a warning, an info; the cursor on the
/// error.
fn config_open_state(w: u16, h: u16) -> State {
    let mut s = config_state(w, h);
    update(
        &mut s,
        Event::Config(ConfigEvent::Opened {
            role: Role::Main,
            path: "/data/cat.toml".into(),
            result: Ok(TRAIN.into()),
        }),
    );
    update(
        &mut s,
        Event::Config(ConfigEvent::Linted(LintResult {
            diagnostics: vec![
                diag(
                    11,
                    9,
                    Sev::Error,
                    "bad-dtype",
                    "[model] dtype 'fp9' is not a dtype diffusion-pipe knows",
                    Some("use one of float32, float16, bfloat16, float8"),
                ),
                diag(
                    10,
                    18,
                    Sev::Warning,
                    "path-missing",
                    "diffusers_path: /models/FLUX.1-dev does not exist",
                    Some("download FLUX.1-dev or fix the path"),
                ),
                diag(
                    1,
                    1,
                    Sev::Info,
                    "derived",
                    "global batch size 1 (1 x 1 x 1 GPU)",
                    None,
                ),
            ],
            dataset_path: Some("/data/cat-dataset.toml".into()),
            derived: vec![],
        })),
    );
    s.config.main.as_mut().unwrap().editor.jump(10, 9);
    s
}

#[test]
fn config_tab_snapshots() {
    let s = config_state(120, 40);
    insta::assert_snapshot!("config_list_120x40", render(&s).backend());
    let mut s = state(Some(2), 80, 24);
    s.tab = Tab::Config;
    s.config.dirs = vec!["/home/me/train".into(), "/home/me/.config/dpgui".into()];
    update(&mut s, Event::Config(ConfigEvent::Files(vec![])));
    insta::assert_snapshot!("config_empty_80x24", render(&s).backend());
    let s = config_open_state(120, 40);
    insta::assert_snapshot!("config_error_120x40", render(&s).backend());
}

#[test]
fn config_dialogs_snapshot() {
    let mut s = config_open_state(100, 30);
    // Unsaved changes, then a tab switch: the guard.
    update(&mut s, key('x'));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('1'));
    assert!(
        matches!(&s.overlay, Overlay::Config(o) if matches!(**o, ConfigOverlay::Unsaved { .. }))
    );
    insta::assert_snapshot!("config_unsaved_guard", render(&s).backend());
    update(&mut s, code(KeyCode::Esc));
    // The path picker on diffusers_path.
    update(&mut s, key('e'));
    s.config.main.as_mut().unwrap().editor.jump(9, 0);
    let cmds = update(&mut s, ctrl('o'));
    assert!(
        matches!(
            &cmds[..],
            [Command::Config(dpgui::tui::config::ConfigCmd::List { .. })]
        ),
        "{cmds:?}"
    );
    update(
        &mut s,
        Event::Config(ConfigEvent::Listing {
            dir: "/models".into(),
            result: Ok(vec![
                dpgui::tui::config::files::PickEntry {
                    name: "FLUX.1-dev".into(),
                    dir: true,
                },
                dpgui::tui::config::files::PickEntry {
                    name: "FLUX.1-schnell".into(),
                    dir: true,
                },
                dpgui::tui::config::files::PickEntry {
                    name: "sdxl.safetensors".into(),
                    dir: false,
                },
            ]),
        }),
    );
    insta::assert_snapshot!("config_picker", render(&s).backend());
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

#[test]
fn config_tab_survives_tiny_terminals() {
    for (w, h) in [
        (40, 12),
        (20, 5),
        (1, 1),
        (0, 0),
        (10, 3),
        (200, 2),
        (3, 40),
        (71, 20),
    ] {
        let mut s = config_open_state(w, h);
        render(&s);
        update(&mut s, ctrl('f'));
        update(&mut s, key('d'));
        render(&s);
        update(&mut s, code(KeyCode::Esc));
        update(&mut s, code(KeyCode::Esc));
        render(&s);
        update(&mut s, code(KeyCode::BackTab));
        render(&s);
        for k in ['n', 'o', 'c', 'r', 'd'] {
            update(&mut s, code(KeyCode::Esc));
            s.config.focus = Focus::Files;
            update(&mut s, key(k));
            render(&s);
            update(&mut s, code(KeyCode::Esc));
        }
        s.config.focus = Focus::Editor;
        s.config.main.as_mut().unwrap().editor.jump(9, 0);
        update(&mut s, ctrl('o'));
        render(&s);
        update(&mut s, code(KeyCode::Esc));
        // A long line scrolled sideways, a wide character, control characters.
        let b = s.config.main.as_mut().unwrap();
        b.editor = dpgui::tui::config::editor::Editor::from_text(&format!(
            "a = '{}界\u{1b}\tx'\n",
            "y".repeat(300)
        ));
        b.editor.jump(0, 303);
        render(&s);
        let mut s = config_state(w, h);
        update(&mut s, Event::Config(ConfigEvent::Files(vec![])));
        render(&s);
    }
}

#[test]
fn config_keys_do_what_the_help_says() {
    let mut s = config_open_state(120, 40);
    let c = |s: &State| s.config.main.as_ref().unwrap().editor.cursor();
    // The editor: typing, undo / redo both ways, search, next problem, picker, dataset, save.
    update(&mut s, key('#'));
    assert!(s.config.dirty());
    update(&mut s, ctrl('z'));
    assert!(!s.config.dirty());
    update(&mut s, ctrl('y'));
    assert!(s.config.dirty());
    update(&mut s, ctrl('u'));
    update(&mut s, ctrl('r'));
    update(&mut s, ctrl('z'));
    assert!(!s.config.dirty());
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::ALT)),
    );
    assert!(
        s.config.main.as_ref().unwrap().editor.selection().is_some(),
        "Alt-A selects all"
    );
    update(&mut s, code(KeyCode::Esc));
    assert!(
        s.config.main.as_ref().unwrap().editor.selection().is_none(),
        "Esc drops the selection first"
    );
    assert_eq!(s.config.focus, Focus::Editor);
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('a'), KeyModifiers::ALT)),
    );
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::ALT)),
    );
    assert!(s.status.as_ref().unwrap().1.contains("copied"));
    update(&mut s, ctrl('f'));
    for ch in "rank".chars() {
        update(&mut s, key(ch));
    }
    update(&mut s, code(KeyCode::Enter));
    assert_eq!(c(&s).0, 15);
    update(&mut s, code(KeyCode::F(3)));
    update(&mut s, ctrl('g'));
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::F(3), KeyModifiers::SHIFT)),
    );
    assert_eq!(c(&s).0, 15);
    update(&mut s, code(KeyCode::F(8)));
    assert_eq!(c(&s).0, 0, "F8 wraps to the first problem");
    update(
        &mut s,
        Event::Key(KeyEvent::new(KeyCode::F(8), KeyModifiers::SHIFT)),
    );
    assert_eq!(c(&s).0, 10);
    render(&s); // PgDn moves by the height drawn
    update(&mut s, code(KeyCode::PageDown));
    assert_eq!(c(&s).0, 20);
    update(&mut s, code(KeyCode::PageUp));
    s.config.main.as_mut().unwrap().editor.jump(9, 0);
    update(&mut s, code(KeyCode::F(2)));
    assert!(matches!(&s.overlay, Overlay::Config(o) if matches!(**o, ConfigOverlay::Picker(_))));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.overlay, Overlay::None);
    let cmds = update(&mut s, ctrl('t'));
    assert!(matches!(
        &cmds[..],
        [Command::Config(dpgui::tui::config::ConfigCmd::Open {
            role: Role::Dataset,
            ..
        })]
    ));
    assert_eq!(update(&mut s, ctrl('s')), vec![], "nothing to save");
    assert!(s.status.as_ref().unwrap().1.contains("no changes"));
    assert_eq!(
        update(&mut s, ctrl('l')),
        vec![Command::NewLaunchWith("/data/cat.toml".into())]
    );
    update(&mut s, code(KeyCode::F(1)));
    assert_eq!(s.overlay, Overlay::Help, "F1: help even while typing");
    let text = screen(&render(&s));
    assert!(text.contains("── editor ──"), "{text}");
    update(&mut s, code(KeyCode::F(1)));
    assert_eq!(s.overlay, Overlay::None);
    // Esc: to the file list; the list's keys.
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.config.focus, Focus::Files);
    update(&mut s, key('j'));
    update(&mut s, code(KeyCode::Down));
    assert_eq!(s.config.selected, 2);
    update(&mut s, key('k'));
    update(&mut s, key('G'));
    assert_eq!(s.config.selected, 4);
    update(&mut s, key('g'));
    update(&mut s, code(KeyCode::End));
    update(&mut s, code(KeyCode::Home));
    assert_eq!(s.config.selected, 0);
    update(&mut s, key('e'));
    assert_eq!(s.config.focus, Focus::Editor);
    update(&mut s, code(KeyCode::BackTab));
    update(&mut s, code(KeyCode::Right));
    assert_eq!(s.config.focus, Focus::Editor);
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(
        (s.tab, s.config.focus),
        (Tab::Config, Focus::Editor),
        "Tab: to the editor"
    );
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, code(KeyCode::BackTab));
    assert_eq!(s.config.focus, Focus::Diagnostics);
    update(&mut s, key('j'));
    update(&mut s, key('j'));
    update(&mut s, key('k'));
    update(&mut s, code(KeyCode::Enter));
    assert_eq!((s.config.focus, c(&s).0), (Focus::Editor, 9));
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, code(KeyCode::BackTab));
    update(&mut s, code(KeyCode::Esc));
    assert_eq!(s.config.focus, Focus::Files);
    for k in ['n', 'o', 'c', 'r'] {
        update(&mut s, key(k));
        assert!(matches!(s.overlay, Overlay::Config(_)), "{k}");
        update(&mut s, code(KeyCode::Esc));
        assert_eq!(s.overlay, Overlay::None);
    }
    for k in [KeyCode::Char('d'), KeyCode::Delete] {
        update(&mut s, code(k));
        assert!(
            matches!(&s.overlay, Overlay::Config(o) if matches!(**o, ConfigOverlay::ConfirmDelete { .. }))
        );
        update(&mut s, key('n'));
    }
    update(&mut s, ctrl('s'));
    update(&mut s, ctrl('t'));
    update(&mut s, key('l'));
    assert_eq!(s.config.focus, Focus::Editor, "l on the open file: edit it");
    update(&mut s, code(KeyCode::Esc));
    update(&mut s, key('w'));
    assert!(s.config.main.is_none(), "w closes it");
    update(&mut s, key('?'));
    let text = screen(&render(&s));
    assert!(text.contains("── file list ──"), "{text}");
    update(&mut s, key('?'));
    // Tab switches tabs again once nothing is open.
    update(&mut s, code(KeyCode::Tab));
    assert_eq!(s.tab, Tab::Jobs);
}

#[test]
fn config_mouse_selects_opens_and_places_the_cursor() {
    let mut s = config_open_state(120, 40);
    render(&s);
    let click = |s: &mut State, x: u16, y: u16| {
        update(
            s,
            Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: x,
                row: y,
                modifiers: KeyModifiers::NONE,
            }),
        )
    };
    // The text: the cursor goes where the click is (after the 5-column gutter).
    click(&mut s, 40, 12);
    assert_eq!(s.config.focus, Focus::Editor);
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor(), (10, 4));
    // The list: "/data" heading, then cat.toml, cat-dataset.toml...
    click(&mut s, 5, 6);
    assert_eq!((s.config.focus, s.config.selected), (Focus::Files, 2));
    let cmds = click(&mut s, 5, 6);
    assert!(
        matches!(&cmds[..], [Command::Config(dpgui::tui::config::ConfigCmd::Open { path, .. })] if path.ends_with("cat-dataset.toml")),
        "a second click opens: {cmds:?}"
    );
    // The problems list (errors first): a second click jumps to it.
    click(&mut s, 40, 36);
    assert_eq!((s.config.focus, s.config.diag_sel), (Focus::Diagnostics, 1));
    click(&mut s, 40, 35);
    assert_eq!((s.config.focus, s.config.diag_sel), (Focus::Diagnostics, 0));
    click(&mut s, 40, 35);
    assert_eq!(s.config.focus, Focus::Editor);
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor(), (10, 8));
    // The wheel over the text moves by three lines.
    update(
        &mut s,
        Event::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 40,
            row: 10,
            modifiers: KeyModifiers::NONE,
        }),
    );
    assert_eq!(s.config.main.as_ref().unwrap().editor.cursor().0, 13);
}

#[test]
fn config_help_fits_120x40() {
    let mut s = config_open_state(120, 40);
    update(&mut s, code(KeyCode::F(1)));
    let text = screen(&render(&s));
    for want in [
        "── file list ──",
        "── dialogs ──",
        "path picker: open",
        "? or Esc to close",
        "quit (running jobs keep running)",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
}
