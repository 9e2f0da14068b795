//! The dashboard without a terminal: snapshots of the Environment tab (80x24 and 160x48; 0, 1
//! and 8 GPUs; no NVML), overlays, tiny terminals, and the keys the help promises.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use dpgui::system::checks::{Check, Status};
use dpgui::system::gpu::{GpuFeed, GpuHistory, fake_gpus, no_nvml_snapshot};
use dpgui::system::inventory::{Holder, Inventory, LeftoverGroup, Member, PortStatus};
use dpgui::tui::app::{AppInfo, Command, Event, Overlay, Panel, State, Tab, update};
use dpgui::tui::theme::Theme;
use dpgui::tui::views;

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

fn render(s: &State) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(s.size.width, s.size.height)).unwrap();
    let theme = Theme::builtin("dark").unwrap();
    t.draw(|f| views::draw(f, s, &theme)).unwrap();
    t
}

fn screen(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
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
