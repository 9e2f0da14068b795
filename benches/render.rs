//! Render benchmark of the Jobs tab's job view: the heaviest frame dpgui draws.
//!
//! 8 rank panes + the launcher's, each with 5,000 lines in its buffer, a loss chart of 10,000
//! points, GPU figures in every pane title, on a 200x60 `TestBackend`. Prints the median and
//! p95 of 200 `terminal.draw` calls (after 20 warm-up draws). Target: median under 2 ms.
//!
//! Run with `cargo bench --bench render` (release profile). No harness: plain `Instant`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;

use dpgui::jobs::journal::{JobState, Journal, ProgressSummary, RankRecord};
use dpgui::jobs::store::JobView;
use dpgui::system::gpu::{GpuFeed, GpuHistory, fake_gpus};
use dpgui::trainer::launch::{JobOptions, LaunchPlan};
use dpgui::trainer::progress::Progress;
use dpgui::tui::app::{AppInfo, State, Tab};
use dpgui::tui::jobs::{JobLogs, Shared};
use dpgui::tui::theme::Theme;
use dpgui::tui::views;

const RANKS: u32 = 8;
const LINES: usize = 5_000;
const LOSS_POINTS: u64 = 10_000;
const WIDTH: u16 = 200;
const HEIGHT: u16 = 60;
const DRAWS: usize = 200;
const WARMUP: usize = 20;
const ID: &str = "20261129-091244-a3f";

fn step_line(step: u64) -> String {
    let loss = 0.2 / (1.0 + step as f64 / 400.0) + 0.02 * ((step * 7919 % 13) as f64 / 13.0);
    format!("steps: {step} loss: {loss:.4} iter time (s): 1.000 samples/sec: 4.000")
}

/// Rank logs of `LINES` realistic lines (step lines, warnings, a few long and odd ones).
fn write_logs(dir: &Path) {
    std::fs::create_dir_all(dir.join("ranks")).unwrap();
    let mut launcher = std::fs::File::create(dir.join("launcher.log")).unwrap();
    for i in 0..LINES {
        writeln!(
            launcher,
            "[2026-11-29 09:12:{:02},001] [INFO] [launch.py:256:main] process {} spawned with command: ['/venv/bin/python', '-u', 'train.py', '--local_rank={}', '--deepspeed', '--config', '/home/alice/flux.toml']",
            i % 60,
            20000 + i % 8,
            i % 8
        )
        .unwrap();
    }
    for r in 0..RANKS {
        let mut f =
            std::fs::File::create(dir.join(format!("ranks/20260101000000_rank{r}.log"))).unwrap();
        for i in 0..LINES {
            match i % 10 {
                0 => writeln!(f, "[2026-11-29 09:13:01,123] [WARNING] [stage_1_and_2.py:1999:step] [deepspeed] fp16 dynamic loss scale overflow! Skipping step. Attempted loss scale: {i}").unwrap(),
                5 => writeln!(f, "\ttab-indented line with a bell\x07 and {} bytes of payload: {}", 300, "z".repeat(300)).unwrap(),
                _ => writeln!(f, "{}", step_line(i as u64)).unwrap(),
            }
        }
    }
}

fn journal() -> Journal {
    Journal {
        id: ID.into(),
        config: "/home/alice/loras/flux_portrait.toml".into(),
        model_type: Some("flux".into()),
        gpus: (0..RANKS).collect(),
        port: 29517,
        cpu_ranks: false,
        options: JobOptions::default(),
        plan: LaunchPlan {
            program: "/venv/bin/deepspeed".into(),
            args: vec!["train.py".into()],
            cwd: "/dp".into(),
            env: vec![],
        },
        output_dir: Some("/data/out".into()),
        epochs: Some(100),
        max_steps: None,
        created: 1_795_000_000,
        boot_id: None,
        state: JobState::Running,
        supervisor: None,
        launcher: None,
        pgid: Some(19990),
        started: Some(1_795_000_000),
        ranks: (0..RANKS)
            .map(|r| RankRecord {
                local_rank: Some(r),
                pid: 20000 + r,
                start_ticks: Some(1),
                log: None,
            })
            .collect(),
        run_dir: None,
        progress: ProgressSummary::default(),
        stop: None,
        exit_code: None,
        exit_signal: None,
        ended: false,
        ended_at: None,
        reason: None,
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    write_logs(dir.path());
    let mut logs = JobLogs::open(ID, dir.path());
    logs.poll();
    let mut p = Progress::default();
    for step in 1..=LOSS_POINTS {
        p.feed(&step_line(step));
        if step == 1_000 {
            p.feed("Started new epoch: 2");
        }
    }
    logs.set_history(p);
    let lines: Vec<usize> = logs.panes.iter().map(|p| p.tailer.buffer().len()).collect();
    assert_eq!(logs.panes.len(), RANKS as usize + 1, "panes: {lines:?}");
    assert!(
        lines.iter().all(|&n| n == LINES),
        "lines per pane: {lines:?}"
    );
    assert_eq!(logs.progress.losses.len(), LOSS_POINTS as usize);

    let mut s = State::new(AppInfo::default());
    s.tab = Tab::Jobs;
    s.size = Rect::new(0, 0, WIDTH, HEIGHT);
    let snap = fake_gpus(RANKS as usize);
    let mut history = GpuHistory::new(300);
    history.push(&snap);
    s.env.gpu = Some(GpuFeed {
        snapshot: Some(snap),
        history,
        samples: 1,
    });
    s.jobs.loaded = true;
    s.jobs.list = vec![JobView {
        journal: journal(),
        dir: dir.path().to_path_buf(),
        state: JobState::Running,
        lost: None,
        processes: vec![],
    }];
    s.jobs.logs = Some(Shared::new(logs));

    let theme = Theme::builtin("dark").unwrap();
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap();
    for _ in 0..WARMUP {
        terminal.draw(|f| views::draw(f, &s, &theme)).unwrap();
    }
    let mut times: Vec<Duration> = Vec::with_capacity(DRAWS);
    for _ in 0..DRAWS {
        let t = Instant::now();
        terminal.draw(|f| views::draw(f, &s, &theme)).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95).div_ceil(100) - 1];
    println!(
        "job view {WIDTH}x{HEIGHT}, {RANKS} ranks + launcher × {LINES} lines, {LOSS_POINTS} loss points: median {:.3} ms, p95 {:.3} ms (min {:.3}, max {:.3}; {DRAWS} draws)",
        ms(median),
        ms(p95),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
    if ms(median) > 2.0 {
        println!("over the 2 ms target");
    }
}
