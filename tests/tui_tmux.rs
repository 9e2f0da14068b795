//! The real `dpgui` binary in a real terminal: each test starts its own tmux server (its own
//! `-L` socket, so tests run in parallel and never touch the user's tmux), runs the dashboard
//! in a detached pane with HOME and the XDG directories in a temporary directory, sends keys
//! with `tmux send-keys` and reads the screen with `tmux capture-pane`.
//!
//! Synchronisation: no fixed sleeps. Every wait polls the screen (or a pane flag) every 50 ms
//! until a predicate holds, and fails after 30 s with the last screen printed.
//!
//! Skipped (with a note on stderr) when `tmux` is not installed; CI installs it.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_dpgui");
const TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);
const TAB_BAR: &str = " dpgui   1 Environment   2 Datasets   3 Config   4 Jobs";

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Returns None (and prints why) when tmux is missing: the caller returns, skipping the test.
fn sandbox(test: &str) -> Option<Tmux> {
    if !tmux_available() {
        eprintln!("note: tmux is not installed; skipping {test}");
        return None;
    }
    Some(Tmux::new(test))
}

/// One private tmux server and the temporary HOME / XDG directories of one test.
struct Tmux {
    socket: String,
    root: tempfile::TempDir,
    /// The pid of the process in the pane (dpgui or the wrapping shell), once started.
    pane_pid: Option<i32>,
}

impl Tmux {
    fn new(test: &str) -> Tmux {
        let root = tempfile::Builder::new()
            .prefix("dpgui-tmux-")
            .tempdir()
            .expect("temporary directory");
        for d in ["home", "config", "state"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        // Loaded when the server starts, so it applies before the pane's process can exit.
        // (`window-size manual` is set per session once it exists: in the config file it makes
        // tmux 3.3's server exit at start.)
        std::fs::write(
            root.path().join("tmux.conf"),
            "set -g remain-on-exit on\n\
             set -g status off\n\
             set -g history-limit 100\n",
        )
        .unwrap();
        Tmux {
            socket: format!("dpgui-test-{}-{test}", std::process::id()),
            root,
            pane_pid: None,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    /// `$XDG_CONFIG_HOME/dpgui`, created.
    fn dpgui_config_dir(&self) -> PathBuf {
        let d = self.path("config/dpgui");
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// The environment the pane's command runs with: a private HOME and XDG directories, and
    /// none of the variables that would change what dpgui shows.
    fn env_argv(&self, extra: &[(&str, &str)]) -> Vec<String> {
        let mut v: Vec<String> = vec!["env".into()];
        for var in [
            "NO_COLOR",
            "DPGUI_DIFFUSION_PIPE",
            "DPGUI_PYTHON",
            "DPGUI_LOG",
            "XDG_RUNTIME_DIR",
        ] {
            v.push("-u".into());
            v.push(var.into());
        }
        v.push(format!("HOME={}", self.path("home").display()));
        v.push(format!("XDG_CONFIG_HOME={}", self.path("config").display()));
        v.push(format!("XDG_STATE_HOME={}", self.path("state").display()));
        v.push(format!("XDG_CACHE_HOME={}", self.path("cache").display()));
        for (k, val) in extra {
            v.push(format!("{k}={val}"));
        }
        v
    }

    /// dpgui's argv: a diffusion-pipe checkout that does not exist, then `args`.
    fn dpgui_argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec![
            BIN.to_string(),
            "--diffusion-pipe".into(),
            self.path("no-such-diffusion-pipe").display().to_string(),
        ];
        v.extend(args.iter().map(|a| a.to_string()));
        v
    }

    fn tmux(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-u")
            .arg("-L")
            .arg(&self.socket)
            .arg("-f")
            .arg(self.path("tmux.conf"))
            .args(args)
            .env_remove("TMUX")
            // The socket lives in the temporary directory and goes away with it.
            .env("TMUX_TMPDIR", self.root.path())
            .env("HOME", self.path("home"))
            .output()
            .expect("run tmux")
    }

    fn tmux_ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `argv` (run directly, not through a shell) in a detached session `main`.
    fn start_argv(&mut self, width: u16, height: u16, argv: &[String]) {
        let (w, h) = (width.to_string(), height.to_string());
        let mut args: Vec<&str> = vec!["new-session", "-d", "-s", "main", "-x", &w, "-y", &h];
        args.push("--");
        args.extend(argv.iter().map(String::as_str));
        self.tmux_ok(&args);
        // resize-window sizes the window by hand from now on.
        self.tmux_ok(&["set-option", "-t", "main", "window-size", "manual"]);
        self.pane_pid = self.display("#{pane_pid}").parse().ok();
    }

    /// Starts dpgui with `args` and the extra environment `env`.
    fn start(&mut self, width: u16, height: u16, args: &[&str], env: &[(&str, &str)]) {
        let mut argv = self.env_argv(env);
        argv.extend(self.dpgui_argv(args));
        self.start_argv(width, height, &argv);
    }

    fn display(&self, format: &str) -> String {
        self.tmux_ok(&["display-message", "-p", "-t", "main", format])
            .trim_end_matches('\n')
            .to_string()
    }

    fn screen(&self) -> String {
        self.tmux_ok(&["capture-pane", "-p", "-t", "main"])
    }

    /// The screen with its SGR escape sequences (colours and attributes).
    fn screen_with_escapes(&self) -> String {
        self.tmux_ok(&["capture-pane", "-p", "-e", "-t", "main"])
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.tmux_ok(&args);
    }

    /// Writes raw bytes to the application's terminal input, as a terminal would.
    fn send_bytes(&self, bytes: &[u8]) {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", "main", "-H"];
        args.extend(hex.iter().map(String::as_str));
        self.tmux_ok(&args);
    }

    /// A left click at a 0-based cell, in the SGR (1006) encoding dpgui turns on.
    fn click(&self, column: usize, row: usize) {
        let (x, y) = (column + 1, row + 1);
        self.send_bytes(format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m").as_bytes());
    }

    fn resize(&self, width: u16, height: u16) {
        let (w, h) = (width.to_string(), height.to_string());
        self.tmux_ok(&["resize-window", "-t", "main", "-x", &w, "-y", &h]);
    }

    fn pane_dead(&self) -> bool {
        self.display("#{pane_dead}") == "1"
    }

    /// Polls the screen every 50 ms until `pred` holds; returns that screen. After `timeout`
    /// fails with what was expected, the last screen, the pane's state and dpgui's log.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            if start.elapsed() > timeout {
                self.fail(what, &screen);
            }
            std::thread::sleep(POLL);
        }
    }

    /// `wait_for` on a tmux format (pane flags) instead of the screen.
    fn wait_for_format(&self, format: &str, want: &str) {
        let start = Instant::now();
        loop {
            let got = self.display(format);
            if got == want {
                return;
            }
            if start.elapsed() > TIMEOUT {
                self.fail(
                    &format!("{format} == {want:?} (last {got:?})"),
                    &self.screen(),
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The exit status of the pane's process, once it has exited. tmux marks a pane dead when
    /// its terminal closes and fills `pane_dead_status` when it reaps the process; tmux 3.3a
    /// now and then never reaps it (a lost SIGCHLD: the process stays a zombie), so the status
    /// is also read from the zombie's `/proc/<pid>/stat` (`exit_code`, wait(2) format).
    fn exit_status(&self) -> i32 {
        let pid = self.pane_pid.expect("pane pid");
        let start = Instant::now();
        loop {
            let status = self.display("#{pane_dead_status}");
            if let Ok(code) = status.parse() {
                return code;
            }
            let signal = self.display("#{pane_dead_signal}");
            assert!(
                signal.is_empty(),
                "killed by signal {signal}:\n{}",
                self.screen()
            );
            if let Some(wait_status) = zombie_exit_code(pid) {
                assert_eq!(
                    wait_status & 0x7f,
                    0,
                    "killed by signal {}",
                    wait_status & 0x7f
                );
                return wait_status >> 8;
            }
            if start.elapsed() > TIMEOUT {
                self.fail("the pane's exit status", &self.screen());
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until every one of `needles` is on the same screen. (Whatever a test checks on
    /// the screen belongs in the predicate: a capture can catch a frame half written.)
    fn wait_all(&self, needles: &[&str]) -> String {
        self.wait_for(&format!("{needles:?} on screen"), TIMEOUT, |s| {
            needles.iter().all(|n| s.contains(n))
        })
    }

    /// Waits for the Jobs tab (empty in a fresh sandbox).
    fn wait_jobs(&self) -> String {
        self.wait_for("the Jobs tab", TIMEOUT, |s| {
            lines(s).first().is_some_and(|t| t.starts_with(TAB_BAR)) && s.contains("No jobs yet.")
        })
    }

    /// Waits for the Config tab (its file list on the left).
    fn wait_config(&self) -> String {
        self.wait_for("the Config tab", TIMEOUT, |s| is_placeholder(s, "Configs"))
    }

    /// Waits for the Datasets tab (its list, whatever it holds).
    fn wait_datasets(&self) -> String {
        self.wait_for("the Datasets tab", TIMEOUT, |s| {
            let l = lines(s);
            l.first().is_some_and(|t| t.starts_with(TAB_BAR))
                && l.get(1).is_some_and(|t| t.starts_with("┌ Datasets ("))
        })
    }

    fn fail(&self, what: &str, screen: &str) -> ! {
        let state = self.display(
            "pane #{pane_width}x#{pane_height} dead=#{pane_dead} status=#{pane_dead_status} \
             signal=#{pane_dead_signal} alternate=#{alternate_on} \
             command=#{pane_current_command}",
        );
        let log = std::fs::read_to_string(self.path("state/dpgui/logs/dpgui.log"))
            .unwrap_or_else(|e| format!("(no log: {e})"));
        let log_tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "timed out after {TIMEOUT:?} waiting for {what}\n{state}\n\
             ---- last screen ----\n{screen}\n---- end of screen ----\n\
             ---- dpgui.log (last lines, newest first) ----\n{}",
            log_tail.join("\n")
        );
    }

    /// Waits for the first full frame of the Environment tab.
    fn wait_environment(&self) -> String {
        self.wait_for("the Environment tab", TIMEOUT, is_environment)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
        // kill-server hangs up the pane; make sure dpgui does not outlive the test.
        if let Some(pid) = self.pane_pid {
            let start = Instant::now();
            while process_alive(pid) && start.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(POLL);
            }
            if process_alive(pid) {
                eprintln!("pid {pid} survived kill-server; sending SIGKILL");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Alive and not a zombie.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// What the status line shows on the right, e.g. "dpgui 0.1.0".
fn version_tag() -> String {
    format!("dpgui {}", env!("CARGO_PKG_VERSION"))
}

/// The wait(2) status of a zombie (exited, not yet reaped), from `/proc/<pid>/stat`.
fn zombie_exit_code(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, exit_code field 52 (the last).
    (fields.first() == Some(&"Z") && fields.len() >= 50).then(|| fields.last()?.parse().ok())?
}

fn lines(screen: &str) -> Vec<&str> {
    screen.lines().collect()
}

/// The Environment tab is drawn: tab bar, GPU panel and the status line's hints.
fn is_environment(screen: &str) -> bool {
    let l = lines(screen);
    l.first().is_some_and(|t| t.starts_with(TAB_BAR))
        && l.get(1).is_some_and(|t| t.starts_with("┌ GPUs"))
        && screen.contains("x end group")
        && !screen.contains(": coming")
}

/// The tab whose first panel's title is `title` is drawn.
fn is_placeholder(screen: &str, title: &str) -> bool {
    let l = lines(screen);
    l.first().is_some_and(|t| t.starts_with(TAB_BAR))
        && l.get(1)
            .is_some_and(|t| t.starts_with(&format!("┌ {title} ")))
}

/// The whole frame is laid out for a `width` x `height` terminal: the tab bar on the first row,
/// the GPU panel's top border across the full width on the second, and (where it fits) the
/// status line on the last. What tmux keeps of an older frame has not all of these in place:
/// shrunk, its lines are cut short of their right corner; grown, its new rows are blank.
fn is_frame_of(screen: &str, width: usize, height: usize) -> bool {
    let l = lines(screen);
    let tab_prefix: String = TAB_BAR.chars().take(width).collect();
    l.len() == height
        && l[0].starts_with(tab_prefix.trim_end())
        && l[1].starts_with("┌ GPUs")
        && l[1].ends_with('┐')
        && l[1].chars().count() == width
        && (width < 40 || l[height - 1].contains(&version_tag()))
}

/// The row of the Ports panel for `port` (its first holder), as whitespace-split words.
fn port_row(screen: &str, port: u16) -> Option<Vec<String>> {
    let needle = format!("│{port} ");
    screen.lines().find_map(|l| {
        let start = l.find(&needle)?;
        // The Ports panel is on the left; cut at its right border.
        let rest = &l[start + '│'.len_utf8()..];
        let cell = rest.split('│').next()?;
        Some(cell.split_whitespace().map(str::to_string).collect())
    })
}

/// True when an SGR sequence in `screen` sets a foreground or background colour.
fn has_colour(screen: &str) -> bool {
    let mut rest = screen;
    while let Some(i) = rest.find("\x1b[") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find(|c: char| !(c.is_ascii_digit() || c == ';')) else {
            break;
        };
        if rest[end..].starts_with('m') {
            for p in rest[..end].split(';') {
                if let Ok(n) = p.parse::<u32>()
                    && matches!(n, 30..=38 | 40..=48 | 90..=97 | 100..=107)
                {
                    return true;
                }
            }
        }
        rest = &rest[end..];
    }
    false
}

#[test]
fn starts_at_120x40_with_tab_bar_gpus_and_ports() {
    let Some(mut t) = sandbox("start") else {
        return;
    };
    // A port this test process holds: dpgui must show it in use, by this process.
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    // The same test the dashboard uses to call a port free.
    let default_free = dpgui::system::ports::port_is_free(29500);
    let port_arg = port.to_string();
    t.start(
        120,
        40,
        &["--fake-gpus", "2", "--watch-port", &port_arg],
        &[],
    );
    assert_eq!(t.display("#{pane_width}x#{pane_height}"), "120x40");

    // 29500: free, unless something on this machine holds it.
    let want_default = |row: &[String]| {
        if default_free {
            row == ["29500", "free"]
        } else {
            row.get(1).is_some_and(|st| st != "free")
        }
    };
    let me = std::process::id().to_string();
    let want_held = |row: &[String]| row.len() >= 4 && row[1..3] == ["in", "use"] && row[3] == me;
    let what = format!(
        "tab bar, both fake GPUs, 29500 {}, port {port} in use by pid {me} (this test)",
        if default_free { "free" } else { "busy" },
    );
    let screen = t.wait_for(&what, TIMEOUT, |s| {
        is_environment(s)
            && s.contains("│0  H100 80GB HBM3")
            && s.contains("│1  H100 80GB HBM3")
            && port_row(s, 29500).is_some_and(|r| want_default(&r))
            && port_row(s, port).is_some_and(|r| want_held(&r))
    });
    assert!(screen.contains("1 Environment"), "{screen}");

    // The real terminal state: alternate screen, mouse reporting (SGR), hidden cursor, colour.
    assert_eq!(t.display("#{alternate_on}"), "1");
    assert_eq!(t.display("#{mouse_sgr_flag}"), "1");
    assert_eq!(t.display("#{cursor_flag}"), "0");
    assert!(
        has_colour(&t.screen_with_escapes()),
        "the dark theme draws in colour"
    );
    drop(held);
}

#[test]
fn number_keys_and_tab_backtab_switch_tabs() {
    let Some(mut t) = sandbox("tabs") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    t.wait_environment();

    t.send(&["2"]);
    t.wait_datasets();
    t.send(&["3"]);
    t.wait_config();
    t.send(&["4"]);
    t.wait_jobs();

    // Tab wraps from the last tab to the first, BackTab from the first to the last.
    t.send(&["Tab"]);
    t.wait_environment();
    t.send(&["Tab"]);
    t.wait_datasets();
    t.send(&["Tab"]);
    t.wait_config();
    t.send(&["BTab"]);
    t.wait_datasets();
    t.send(&["BTab"]);
    t.wait_environment();
    t.send(&["BTab"]);
    t.wait_jobs();

    t.send(&["1"]);
    t.wait_environment();
    assert!(!t.pane_dead());
}

#[test]
fn help_opens_with_question_mark_and_closes_with_esc() {
    let Some(mut t) = sandbox("help") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    t.wait_environment();

    t.send(&["?"]);
    t.wait_all(&[
        "┌ Help ",
        "end the selected process group",
        "quit (running jobs keep running)",
        "? or Esc to close",
    ]);

    t.send(&["Escape"]);
    t.wait_for("help closed", TIMEOUT, |s| {
        is_environment(s)
            && !s.contains("end the selected process group")
            && !s.contains("? or Esc to close")
    });
    assert!(!t.pane_dead());
}

#[test]
fn q_quits_and_leaves_the_alternate_screen() {
    let Some(mut t) = sandbox("quit") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    t.wait_environment();
    assert_eq!(t.display("#{remain-on-exit}"), "on");
    assert_eq!(t.display("#{alternate_on}"), "1");

    t.send(&["q"]);
    t.wait_for_format("#{pane_dead}", "1");
    assert_eq!(t.exit_status(), 0, "dpgui exits with status 0");
    assert_eq!(t.display("#{alternate_on}"), "0", "alternate screen left");
    let screen = t.screen();
    assert!(
        !screen.contains("Environment") && !screen.contains("┌ GPUs"),
        "the normal screen is back, without the dashboard:\n{screen}"
    );
    assert!(!screen.contains("panicked"), "{screen}");
}

/// A shell runs dpgui at 120x40, then prints its exit status and whether the tty modes came
/// back ("dpgui exited rc=N tty=restored|CHANGED") and stays alive for the checks.
fn start_under_reporting_shell(t: &mut Tmux) {
    let script = r#"before=$(stty -g); "$@"; rc=$?; after=$(stty -g)
if [ "$before" = "$after" ]; then tty=restored; else tty=CHANGED; fi
echo "dpgui exited rc=$rc tty=$tty"; exec sleep 600"#;
    let mut argv = t.env_argv(&[]);
    argv.extend(["sh".into(), "-c".into(), script.into(), "sh".into()]);
    argv.extend(t.dpgui_argv(&["--fake-gpus", "2"]));
    t.start_argv(120, 40, &argv);
    t.wait_environment();
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal_for_the_shell() {
    let Some(mut t) = sandbox("ctrlc") else {
        return;
    };
    start_under_reporting_shell(&mut t);

    t.send(&["C-c"]);
    let screen = t.wait_for("the shell's report", TIMEOUT, |s| {
        s.lines().any(|l| {
            l.starts_with("dpgui exited rc=")
                && (l.ends_with("tty=restored") || l.ends_with("tty=CHANGED"))
        })
    });
    assert!(
        screen.contains("dpgui exited rc=0 tty=restored"),
        "raw mode undone, exit status 0:\n{screen}"
    );
    assert!(!screen.contains("┌ GPUs"), "{screen}");
    assert!(!t.pane_dead(), "the shell is still running");
    assert_eq!(t.display("#{alternate_on}"), "0", "alternate screen left");
    assert_eq!(t.display("#{cursor_flag}"), "1", "cursor shown again");
    assert_eq!(
        t.display("#{mouse_any_flag}#{mouse_button_flag}#{mouse_standard_flag}#{mouse_sgr_flag}"),
        "0000",
        "mouse reporting turned off"
    );
}

#[test]
fn sigterm_ends_the_dashboard_and_restores_the_terminal() {
    let Some(mut t) = sandbox("sigterm") else {
        return;
    };
    start_under_reporting_shell(&mut t);
    // dpgui is a child of the pane's shell (maybe under `env`): find it by its stat comm.
    let shell = t.pane_pid.expect("pane pid");
    let dpgui = descendants(shell as u32)
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == "dpgui")
        })
        .expect("dpgui under the pane's shell");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dpgui as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let screen = t.wait_for("the shell's report", TIMEOUT, |s| {
        s.lines().any(|l| l.starts_with("dpgui exited rc="))
    });
    assert!(
        screen.contains("dpgui exited rc=0 tty=restored"),
        "SIGTERM restores the terminal:\n{screen}"
    );
    assert_eq!(t.display("#{alternate_on}"), "0", "alternate screen left");
}

/// All descendants of `pid`, by walking /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u32>().ok());
            if ppid == Some(p) {
                out.push(child);
                todo.push(child);
            }
        }
    }
    out
}

#[test]
fn survives_resizes_down_to_20x5_and_redraws_at_120x40() {
    let Some(mut t) = sandbox("resize") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    t.wait_environment();
    let pid = t.pane_pid.expect("pane pid");

    for (w, h) in [(40u16, 12u16), (120, 40), (20, 5), (120, 40)] {
        t.resize(w, h);
        assert_eq!(
            t.display("#{pane_width}x#{pane_height}"),
            format!("{w}x{h}")
        );
        t.wait_for(&format!("a frame drawn at {w}x{h}"), TIMEOUT, |s| {
            is_frame_of(s, w.into(), h.into())
        });
        assert!(!t.pane_dead(), "dpgui died at {w}x{h}:\n{}", t.screen());
        assert!(process_alive(pid));
    }
    let screen = t.wait_for("the full dashboard again", TIMEOUT, |s| {
        is_environment(s) && port_row(s, 29500).is_some() && s.contains(&version_tag())
    });
    // (The host summary may follow the tabs on the right where it fits.)
    assert!(
        lines(&screen)[0].starts_with(TAB_BAR),
        "tab bar intact:\n{screen}"
    );
    // Still responsive after all that.
    t.send(&["2"]);
    t.wait_datasets();
}

#[test]
fn mouse_clicks_on_tab_titles_switch_tabs() {
    let Some(mut t) = sandbox("mouse") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    let screen = t.wait_environment();
    assert_eq!(
        t.display("#{mouse_sgr_flag}"),
        "1",
        "SGR mouse reporting is on"
    );
    // tmux cannot click by itself: write the bytes a terminal sends for a click, at the
    // column where each title is drawn.
    let column_of = |title: &str| {
        let row0 = lines(&screen)[0];
        row0[..row0.find(title).unwrap()].chars().count()
    };
    t.click(column_of("2 Datasets"), 0);
    t.wait_datasets();
    t.click(column_of("4 Jobs"), 0);
    t.wait_jobs();
    t.click(column_of("1 Environment"), 0);
    t.wait_environment();
}

#[test]
fn no_color_still_runs_and_draws_without_colour() {
    let Some(mut t) = sandbox("nocolor") else {
        return;
    };
    t.start(120, 40, &["--fake-gpus", "2"], &[("NO_COLOR", "1")]);
    let screen = t.wait_for("Environment tab with the NO_COLOR theme", TIMEOUT, |s| {
        is_environment(s) && s.contains("· NO_COLOR ·") && s.contains("H100")
    });
    assert!(screen.contains("1 Environment"));
    let escaped = t.screen_with_escapes();
    assert!(
        !has_colour(&escaped),
        "NO_COLOR: no colour in any SGR sequence:\n{}",
        escaped.escape_debug()
    );
    t.send(&["3"]);
    t.wait_config();
}

#[test]
fn malformed_config_shows_a_warning_with_its_line_instead_of_crashing() {
    let Some(mut t) = sandbox("badconfig") else {
        return;
    };
    let file: PathBuf = t.dpgui_config_dir().join("config.toml");
    std::fs::write(&file, "# dpgui\nrefresh_secs = = 2\n").unwrap();
    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    let tail = file_name_tail(&file);
    let warning = format!("{tail}: line 2: not valid TOML");
    let screen = t.wait_for(
        &format!("the status line to say {warning:?}"),
        TIMEOUT,
        |s| is_environment_warned(s, &warning),
    );
    assert!(screen.contains("1 Environment"));
    // The checks panel repeats it as `file:line`.
    t.wait_all(&["dpgui config", &format!("{tail}:2: not valid TOML")]);
    assert!(!t.pane_dead());
    // Esc clears the message; the key hints come back.
    t.send(&["Escape"]);
    t.wait_environment();
}

/// The Environment tab, whose status line shows `warning` instead of the key hints.
fn is_environment_warned(screen: &str, warning: &str) -> bool {
    let l = lines(screen);
    l.first().is_some_and(|t| t.starts_with(TAB_BAR))
        && l.get(1).is_some_and(|t| t.starts_with("┌ GPUs"))
        && l.last().is_some_and(|s| s.contains(warning))
}

/// `dpgui/config.toml`: the end of the path, which the status line shows whole.
fn file_name_tail(file: &Path) -> &str {
    let s = file.to_str().unwrap();
    &s[s.len() - "dpgui/config.toml".len()..]
}

/// The whole Jobs path through the terminal with the real DeepSpeed launcher: launch from the
/// dialog, `kill -9` the dashboard while the job runs, the job finishes anyway (its supervisor
/// records the exit and `TRAINING COMPLETE!`), and a new dashboard shows it: `dpgui attach`.
#[test]
fn a_job_launched_from_the_dashboard_survives_kill_9_of_it() {
    let Some(mut t) = sandbox("launch") else {
        return;
    };
    let Some(venv) = common::venv::deepspeed_venv() else {
        return;
    };
    let root = t.path("");
    // In dpgui's config dir, so the dialog offers it.
    common::configs::write_training_config(&root, &t.dpgui_config_dir().join("train.toml"), 2);
    let env = common::venv::launcher_env(&venv);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let checkout = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dp_checkout");
    let env_argv = t.env_argv(&env);
    let base = |extra: &[&str]| {
        let mut argv = env_argv.clone();
        argv.extend(
            [
                BIN,
                "--diffusion-pipe",
                checkout.to_str().unwrap(),
                "--python",
                venv.to_str().unwrap(),
            ]
            .iter()
            .chain(extra)
            .map(|a| a.to_string()),
        );
        argv
    };
    t.start_argv(160, 48, &base(&[]));
    t.wait_environment();
    t.send(&["4"]);
    t.wait_jobs();
    t.send(&["n"]);
    t.wait_all(&["Launch a job", "train.toml"]);
    t.send(&["Enter"]);
    t.wait_all(&["rank 0 (CPU", "rank 1 (CPU"]);
    t.send(&["Down", "Space", "Enter"]);
    t.wait_all(&["Options:"]);
    t.send(&["v"]);
    t.send(&["-l", "DP_TEST_STEPS_PER_EPOCH=6"]);
    t.send(&["Enter"]);
    t.wait_all(&["DP_TEST_STEPS_PER_EPOCH=6"]);
    t.send(&["Enter"]);
    let review = t.wait_all(&["Enter launch", "--include localhost:0,1"]);
    assert!(review.contains("--master_port="), "{review}");
    t.send(&["Enter"]);
    t.wait_for("the job started", Duration::from_secs(60), |s| {
        s.contains(" started")
    });
    let jobs = t.path("state/dpgui/jobs");
    let id = std::fs::read_dir(&jobs)
        .unwrap()
        .next()
        .expect("a job dir")
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let journal = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(jobs.join(&id).join("journal.json")).unwrap())
            .unwrap()
    };
    let sup = dpgui::system::procs::ProcId {
        pid: journal()["supervisor"]["pid"].as_u64().unwrap() as u32,
        start_ticks: journal()["supervisor"]["start_ticks"].as_u64().unwrap(),
    };

    // kill -9 of the dashboard while the job runs.
    let pid = t.pane_pid.expect("pane pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    t.wait_for_format("#{pane_dead}", "1");
    assert!(
        dpgui::system::procs::is_alive(sup),
        "the supervisor must outlive the dashboard"
    );
    let left = dpgui::system::signals::wait_for_exit(&[sup], Duration::from_secs(300));
    assert!(left.is_empty(), "the job did not finish");
    let j = journal();
    assert_eq!(j["state"], "succeeded", "{j:#}");
    assert_eq!(j["exit_code"], 0);
    assert_eq!(j["progress"]["complete"], true);

    // A new dashboard shows it: `dpgui attach` opens its view, Esc shows the list.
    let argv = base(&["attach", &id]);
    let mut args = vec!["respawn-pane", "-k", "-t", "main", "--"];
    args.extend(argv.iter().map(String::as_str));
    t.tmux_ok(&args);
    t.wait_all(&[
        &format!("job {id}"),
        "TRAINING COMPLETE",
        "rank 0",
        "rank 1",
        "launcher",
    ]);
    t.send(&["Escape"]);
    let list = t.wait_all(&[id.as_str(), "succeeded", "train.toml"]);
    assert!(list.contains("12/12"), "{list}");
}

/// The Config tab end to end: open a config from the workspace list, type an error, see it
/// flagged (gutter, problems list, status line), fix it, save with Ctrl-S, and find on disk
/// exactly what was typed, with the previous version in NAME.bak.
#[test]
fn config_editor_flags_an_error_live_and_saves_what_was_typed() {
    let Some(mut t) = sandbox("config") else {
        return;
    };
    let work = t.path("work");
    std::fs::create_dir_all(work.join("images")).unwrap();
    std::fs::write(work.join("images/cat.png"), b"not really a png").unwrap();
    std::fs::write(work.join("images/cat.txt"), "a cat").unwrap();
    std::fs::write(work.join("sdxl.safetensors"), b"weights").unwrap();
    // dpgui's config names the workspace, so the list holds just these two files.
    std::fs::write(
        t.dpgui_config_dir().join("config.toml"),
        format!("config_dirs = ['{}']\n", work.display()),
    )
    .unwrap();
    std::fs::write(
        work.join("data.toml"),
        format!(
            "resolutions = [512]\n\n[[directory]]\npath = '{}'\n",
            work.join("images").display()
        ),
    )
    .unwrap();
    let original = format!(
        "# an SDXL LoRA\noutput_dir = '{}'\ndataset = '{}'\nepochs = 10\n\
         micro_batch_size_per_gpu = 1\nsave_every_n_epochs = 1\n\n[model]\ntype = 'sdxl'\n\
         checkpoint_path = '{}'\ndtype = 'bfloat16'  # keep this comment\n\n\
         [adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n\n\
         [optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n",
        work.join("out").display(),
        work.join("data.toml").display(),
        work.join("sdxl.safetensors").display(),
    );
    let train = work.join("train.toml");
    std::fs::write(&train, &original).unwrap();

    t.start(120, 40, &["--fake-gpus", "2"], &[]);
    t.wait_environment();
    t.send(&["3"]);
    t.wait_all(&["┌ Configs", "data.toml", "train.toml"]);
    // data.toml, then train.toml: the second row.
    t.send(&["j", "Enter"]);
    let linted = |s: &str| s.contains("Ln 1, Col 1") && !s.contains("checking…");
    t.wait_for("train.toml open and linted", TIMEOUT, |s| {
        linted(s) && s.contains("# an SDXL LoRA") && s.contains("Problems")
            || linted(s) && s.contains("No problems found")
    });
    // Find the model's dtype and type over it: a dtype diffusion-pipe does not know.
    t.send(&["C-f"]);
    t.send(&["-l", "bfloat16"]);
    t.send(&["Enter"]);
    t.wait_all(&["Ln 11, Col 18"]);
    t.send(&["-l", "fp9"]);
    let flagged = t.wait_for("the bad dtype flagged", TIMEOUT, |s| {
        s.lines()
            .any(|l| l.contains("│E 11 dtype = 'fp9'  # keep this comment"))
            && s.lines().any(|l| l.contains("E 11:") && l.contains("fp9"))
            && !s.contains("checking…")
    });
    // The status line names the problem under the cursor.
    let status = lines(&flagged)
        .last()
        .copied()
        .unwrap_or_default()
        .to_string();
    assert!(status.contains("line 11:"), "{flagged}");
    assert!(
        flagged.contains("train.toml ●"),
        "marked modified:\n{flagged}"
    );
    // Fix it: a dtype that exists.
    t.send(&["BSpace", "BSpace", "BSpace"]);
    t.send(&["-l", "float16"]);
    t.wait_for("the problem gone", TIMEOUT, |s| {
        s.lines()
            .any(|l| l.contains(" 11 dtype = 'float16'  # keep this comment"))
            && !s.lines().any(|l| l.contains("│E 11 "))
            && !s.contains("checking…")
    });
    t.send(&["C-s"]);
    t.wait_all(&["saved train.toml (the previous version is in train.toml.bak)"]);
    let want = original.replacen("dtype = 'bfloat16'", "dtype = 'float16'", 1);
    assert_eq!(std::fs::read_to_string(&train).unwrap(), want);
    assert_eq!(
        std::fs::read_to_string(work.join("train.toml.bak")).unwrap(),
        original
    );
    let mut names: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "data.toml",
            "images",
            "sdxl.safetensors",
            "train.toml",
            "train.toml.bak"
        ],
        "no temporary file is left"
    );
    let saved = t.wait_for("the modified mark gone", TIMEOUT, |s| {
        s.contains("train.toml ") && !s.contains("train.toml ●")
    });
    assert!(!saved.contains("panicked"));
    // Quitting now asks nothing.
    t.send(&["C-c"]);
    t.wait_for_format("#{pane_dead}", "1");
    assert_eq!(t.exit_status(), 0);
}

/// The Datasets tab in a real terminal: the workspace's training config names a dataset, the
/// scan shows its problem, the media browser edits a caption and the save lands on disk.
#[test]
fn datasets_tab_scans_and_edits_a_caption() {
    let Some(mut t) = sandbox("datasets") else {
        return;
    };
    let work = t.path("work");
    let photos = work.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for (name, w, h) in [
        ("cat1.png", 64, 64),
        ("cat2.png", 96, 48),
        ("nocap.png", 32, 64),
    ] {
        image::RgbImage::from_pixel(w, h, image::Rgb([180, 60, 60]))
            .save_with_format(photos.join(name), image::ImageFormat::Png)
            .unwrap();
    }
    std::fs::write(photos.join("cat1.txt"), "a cat").unwrap();
    std::fs::write(photos.join("cat2.txt"), "a long cat").unwrap();
    std::fs::write(
        t.dpgui_config_dir().join("config.toml"),
        format!("config_dirs = ['{}']\n", work.display()),
    )
    .unwrap();
    std::fs::write(
        work.join("data.toml"),
        format!(
            "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n\n[[directory]]\npath = '{}'\n",
            photos.display()
        ),
    )
    .unwrap();
    std::fs::write(
        work.join("train.toml"),
        format!(
            "output_dir = '{}'\ndataset = '{}'\nepochs = 1\nmicro_batch_size_per_gpu = 1\n\
             save_every_n_epochs = 1\n[model]\ntype = 'sdxl'\ncheckpoint_path = '/x.safetensors'\n\
             dtype = 'bfloat16'\n[optimizer]\ntype = 'adamw_optimi'\nlr = 2e-5\n",
            work.join("out").display(),
            work.join("data.toml").display(),
        ),
    )
    .unwrap();

    t.start(120, 40, &["--fake-gpus", "1"], &[]);
    t.wait_environment();
    t.send(&["2"]);
    t.wait_datasets();
    // Scanned in the background: 3 images, the one without a caption is a problem.
    t.wait_all(&[
        "data.toml",
        "3 img 0 vid",
        "has no caption",
        "steps per epoch",
    ]);
    t.send(&["Enter"]);
    t.wait_all(&["[[directory]] 1/1", "Problems"]);
    t.send(&["m"]);
    t.wait_all(&["all media (1/3)", "cat1.txt · e edit", "a cat"]);
    t.send(&["e"]);
    t.wait_all(&["Ctrl-S save"]);
    t.send(&["End"]);
    t.send(&["-l", " on a red sofa"]);
    t.send(&["C-s"]);
    t.wait_all(&["saved ", "cat1.txt · e edit"]);
    assert_eq!(
        std::fs::read_to_string(photos.join("cat1.txt")).unwrap(),
        "a cat on a red sofa"
    );
    // Next file, back, quit.
    t.send(&["n"]);
    t.wait_all(&["all media (2/3)", "a long cat"]);
    // One Escape at a time: two in a row read as Alt-Escape.
    t.send(&["Escape"]);
    t.wait_all(&["Problems (⏎"]);
    t.send(&["Escape"]);
    t.wait_datasets();
    t.send(&["q"]);
    t.wait_for_format("#{pane_dead}", "1");
    assert_eq!(t.exit_status(), 0);
}

#[path = "common/hub_server.rs"]
mod hub_server;

/// The Config tab's hub dialog in a real terminal, against the loopback hub server: F4 on a
/// `checkpoint_path` holding a repo id, list its files, take the suggested one into the hub
/// cache; the snapshot path lands in the buffer, Ctrl-S writes it with every comment.
#[test]
fn config_hub_dialog_downloads_the_suggested_file_and_writes_its_path() {
    let Some(mut t) = sandbox("hub") else {
        return;
    };
    const SDXL: &str = "stabilityai/stable-diffusion-xl-base-1.0";
    const COMMIT: &str = "462165984030d82259a11f4367a4eed129e94a7b";
    let weights: Vec<u8> = (0..250_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let server = hub_server::HubServer::start(vec![hub_server::RepoSpec::new(
        SDXL,
        COMMIT,
        vec![
            (
                "model_index.json",
                hub_server::Content::Bytes(b"{}".to_vec()),
            ),
            (
                "sd_xl_base_1.0.safetensors",
                hub_server::Content::Bytes(weights.clone()),
            ),
            (
                "unet/diffusion_pytorch_model.safetensors",
                hub_server::Content::Bytes(vec![7; 1000]),
            ),
        ],
    )]);
    let work = t.path("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        t.dpgui_config_dir().join("config.toml"),
        format!("config_dirs = ['{}']\n", work.display()),
    )
    .unwrap();
    let original = format!(
        "# an SDXL LoRA\noutput_dir = '{}'\ndataset = '{}'\nepochs = 10\n\
         micro_batch_size_per_gpu = 1\nsave_every_n_epochs = 1\n\n[model]\ntype = 'sdxl'\n\
         # the base model, from the hub\ncheckpoint_path = '{SDXL}'  # keep this comment\n\
         dtype = 'bfloat16'\n\n[adapter]\ntype = 'lora'\nrank = 32\ndtype = 'bfloat16'\n",
        work.join("out").display(),
        work.join("data.toml").display(),
    );
    let train = work.join("train.toml");
    std::fs::write(&train, &original).unwrap();
    let hf_home = t.path("hf");
    let cache = hf_home.join("hub");
    let endpoint = server.endpoint();
    let (home_s, cache_s) = (hf_home.display().to_string(), cache.display().to_string());
    t.start(
        160,
        45,
        &["--fake-gpus", "2"],
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", &home_s),
            ("HF_HUB_CACHE", &cache_s),
            ("HF_TOKEN", ""),
            ("HF_TOKEN_PATH", &format!("{home_s}/no-token")),
            ("HF_HUB_OFFLINE", "0"),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ],
    );
    t.wait_environment();
    t.send(&["3"]);
    t.wait_all(&["┌ Configs", "train.toml"]);
    t.send(&["Enter"]);
    t.wait_for("train.toml open", TIMEOUT, |s| {
        s.contains("# an SDXL LoRA") && s.contains("Ln 1, Col 1")
    });
    // The cursor onto checkpoint_path (line 11), then the hub dialog.
    t.send(&["C-f"]);
    t.send(&["-l", "checkpoint_path"]);
    t.send(&["Enter"]);
    t.wait_all(&["Ln 11, Col"]);
    t.send(&["F4"]);
    t.wait_all(&[
        "Download from the Hugging Face Hub",
        &format!("repo  > {SDXL}"),
    ]);
    t.send(&["Enter"]);
    let listed = t.wait_all(&["★ sd_xl_base_1.0.safetensors", "3 files"]);
    assert!(!listed.contains("from the cache"), "{listed}");
    t.send(&["Enter"]);
    t.wait_all(&["into:", "the hub cache"]);
    t.send(&["Enter"]);
    // Downloaded: the path is in the buffer, which is now modified.
    let local = cache.join(format!(
        "models--stabilityai--stable-diffusion-xl-base-1.0/snapshots/{COMMIT}/sd_xl_base_1.0.safetensors"
    ));
    let want_line = format!("checkpoint_path = '{}'", local.display());
    t.wait_for("the path in the buffer", TIMEOUT, |s| {
        s.contains("train.toml ●") && s.contains(&want_line[..60])
    });
    assert_eq!(std::fs::read(&local).unwrap(), weights);
    assert_eq!(server.body_gets("sd_xl_base_1.0.safetensors").len(), 1);
    // The downloads window lists it as done.
    t.send(&["F6"]);
    t.wait_all(&["Downloads", "done", SDXL]);
    // The window closed before the next key: an Escape right before it reads as Alt.
    t.send(&["Escape"]);
    t.wait_for("the downloads window closed", TIMEOUT, |s| {
        !s.contains("Hub cache")
    });
    t.send(&["C-s"]);
    t.wait_all(&["saved train.toml"]);
    let want = original.replace(
        &format!("checkpoint_path = '{SDXL}'  # keep this comment"),
        &format!("{want_line}  # keep this comment"),
    );
    assert_eq!(std::fs::read_to_string(&train).unwrap(), want);
    t.send(&["C-c"]);
    t.wait_for_format("#{pane_dead}", "1");
    assert_eq!(t.exit_status(), 0);
}
