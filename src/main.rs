//! `dpgui`: the dashboard, or one headless subcommand. Nothing else lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dpgui",
    version,
    about = "Terminal dashboard for training LoRAs with diffusion-pipe",
    long_about = "Terminal dashboard for training LoRAs with diffusion-pipe.\n\n\
        With no subcommand, opens the dashboard. Settings come from flags, then the variables \
        DPGUI_DIFFUSION_PIPE and DPGUI_PYTHON, then ~/.config/dpgui/config.toml."
)]
struct Cli {
    /// diffusion-pipe checkout (default: vendor/diffusion-pipe).
    #[arg(long, global = true, value_name = "DIR")]
    diffusion_pipe: Option<PathBuf>,
    /// Python interpreter or venv directory that runs diffusion-pipe.
    #[arg(long, global = true, value_name = "PATH")]
    python: Option<PathBuf>,
    /// Theme: dark, light, basic16, or a file in ~/.config/dpgui/themes/.
    #[arg(long, global = true, value_name = "NAME")]
    theme: Option<String>,
    /// Config file instead of ~/.config/dpgui/config.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Refresh interval in seconds.
    #[arg(long, global = true, value_name = "SECS")]
    refresh: Option<f64>,
    /// Watch this port too (repeatable); 29500 is always watched.
    #[arg(long = "watch-port", global = true, value_name = "PORT")]
    watch_port: Vec<u16>,
    /// Seconds between SIGTERM and SIGKILL when ending processes.
    #[arg(long, global = true, value_name = "SECS")]
    stop_grace: Option<f64>,
    /// Seconds the Python environment probe may take.
    #[arg(long, global = true, value_name = "SECS")]
    probe_timeout: Option<f64>,
    /// Show N made-up GPUs instead of NVML (demos, screenshots, tests).
    #[arg(long, hide = true, value_name = "N")]
    fake_gpus: Option<usize>,
    /// Draw the first frame, then exit (start-up benchmark).
    #[arg(long, hide = true)]
    exit_after_first_frame: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check Python, torch, CUDA, DeepSpeed and the diffusion-pipe checkout; exit 1 on failure.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// GPUs, their memory, temperature, power and processes (NVML).
    Gpus {
        #[arg(long)]
        json: bool,
    },
    /// Who listens on 29500 and the watched ports; end a leftover process group.
    Ports {
        /// Port to check (repeatable; default: 29500 and the watched ports).
        #[arg(long = "port", value_name = "N")]
        port: Vec<u16>,
        #[arg(long)]
        json: bool,
        /// End this process group: SIGTERM, grace period, SIGKILL, with identity re-checks.
        #[arg(long, value_name = "PGID")]
        free: Option<u32>,
        /// Do not ask for confirmation (for scripts).
        #[arg(long, requires = "free")]
        yes: bool,
        /// Also end processes of other users (root only): the extra confirmation.
        #[arg(long, requires = "free")]
        allow_other_users: bool,
    },
    /// Start a training job through the DeepSpeed launcher, supervised in the background.
    Launch {
        /// The main training config (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// GPU ids, e.g. 0 or 0,1 or all.
        #[arg(long, value_name = "IDS")]
        gpus: String,
        /// Master port: `auto` (from port_range) or a number.
        #[arg(long, value_name = "auto|N", default_value = "auto")]
        port: String,
        /// Resume from the latest run dir, or from the named one.
        #[arg(long, value_name = "RUN_DIR", num_args = 0..=1, default_missing_value = "latest")]
        resume: Option<String>,
        #[arg(long)]
        regenerate_cache: bool,
        #[arg(long)]
        cache_only: bool,
        #[arg(long)]
        trust_cache: bool,
        #[arg(long)]
        reset_dataloader: bool,
        #[arg(long)]
        reset_optimizer: bool,
        /// NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1 (consumer GPUs, multi-GPU).
        #[arg(long)]
        nccl_p2p_off: bool,
        /// PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.
        #[arg(long)]
        expandable_segments: bool,
        /// Extra environment for every rank (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Print the exact argv, cwd and environment changes; start nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check a main or dataset config (and the dataset configs it references); exit 1 on error.
    /// What diffusion-pipe will see in a dataset: counts, problems, size buckets and (with a
    /// training config) the global batch and steps per epoch; exit 1 on an error-level problem.
    Dataset {
        /// A dataset config, a training config (its dataset is used) or a directory.
        #[arg(value_name = "DATASET")]
        dataset: PathBuf,
        /// The training config whose batch sizes and model give the steps per epoch.
        #[arg(long, value_name = "TRAIN.toml")]
        config: Option<PathBuf>,
        /// GPU count for the global batch (default: the GPUs NVML sees, else 1).
        #[arg(long)]
        gpus: Option<u64>,
        /// Ignore the scan cache: read every file's header again.
        #[arg(long)]
        rescan: bool,
        #[arg(long)]
        json: bool,
    },
    Lint {
        /// The config file (TOML).
        #[arg(id = "lint_config", value_name = "CONFIG")]
        config: PathBuf,
        /// One JSON object per finding: file, line, column, severity, code, message, fix.
        #[arg(long)]
        json: bool,
    },
    /// dpgui's jobs, running and ended, with progress.
    Jobs {
        #[arg(long)]
        json: bool,
    },
    /// Stop a job: by default SIGINT, grace, SIGTERM, grace, SIGKILL to every process of it.
    Stop {
        /// Job id (or a unique prefix, or `last`).
        job: String,
        /// Save a resumable checkpoint, then stop (touches <run_dir>/save_quit; waits).
        #[arg(long, group = "how")]
        save: bool,
        /// Save a checkpoint now and keep training (touches <run_dir>/save).
        #[arg(long, group = "how", alias = "checkpoint")]
        now: bool,
        /// SIGKILL every process of the job at once (asks first).
        #[arg(long, group = "how")]
        kill: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Print a job's log: rank 0 by default.
    Logs {
        job: String,
        #[arg(long, value_name = "N", conflicts_with = "launcher")]
        rank: Option<u32>,
        /// The launcher's own log (runner and launch.py).
        #[arg(long)]
        launcher: bool,
        /// Keep printing as the log grows, until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Open the dashboard on a job.
    Attach { job: String },
    /// Download from the Hugging Face Hub into the hub cache Python shares; print the local path.
    Fetch {
        /// Repo id, e.g. stabilityai/stable-diffusion-xl-base-1.0.
        repo: String,
        /// Files in the repo (default: what fits --key, else the whole repo).
        files: Vec<String>,
        /// Branch, tag or commit.
        #[arg(long, value_name = "R", default_value = "main")]
        revision: String,
        /// Write the local path into this training config (comments and formatting kept).
        #[arg(long, value_name = "CONFIG", requires = "key")]
        into: Option<PathBuf>,
        /// The config key, e.g. model.checkpoint_path.
        #[arg(long, value_name = "KEY", requires = "into")]
        key: Option<String>,
        /// Download into this directory instead of the hub cache.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Use only the cache, as HF_HUB_OFFLINE=1 does.
        #[arg(long)]
        offline: bool,
        /// List the repo's files with sizes (and what fits --key); download nothing.
        #[arg(long)]
        list: bool,
        #[arg(long)]
        json: bool,
    },
    /// The detached job supervisor (started by launch).
    #[command(name = "__supervise", hide = true)]
    Supervise { job_dir: PathBuf },
    /// Benchmarks: read a rank log's whole progress history, print it as JSON.
    #[command(name = "__scan-history", hide = true)]
    ScanHistory { file: PathBuf },
    /// Benchmarks: the Datasets tab's frame rate before and during a fresh scan of DATASET.
    #[command(name = "__bench-scan-ui", hide = true)]
    BenchScanUi {
        dataset: PathBuf,
        #[arg(long, default_value_t = 3.0)]
        idle: f64,
    },
    /// Benchmarks: follow a job dir's logs as the job view does, report line latency.
    #[command(name = "__bench-tail", hide = true)]
    BenchTail {
        job_dir: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let dir = dpgui::paths::log_dir();
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::never(&dir, "dpgui.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("DPGUI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .init();
    Some(guard)
}

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    let guard = init_logging();
    // `launch` and `dataset` have a `--config` of their own (a training config); clap hands its
    // value to the global one too, which must then not be read as dpgui's config file.
    let own_config = matches!(cli.cmd, Some(Cmd::Launch { .. } | Cmd::Dataset { .. }));
    let overrides = dpgui::settings::Overrides {
        config_file: cli.config.clone().filter(|_| !own_config),
        diffusion_pipe: cli.diffusion_pipe.clone(),
        python: cli.python.clone(),
        refresh_secs: cli.refresh,
        theme: cli.theme.clone(),
        watched_ports: cli.watch_port.clone(),
        stop_grace_secs: cli.stop_grace,
        probe_timeout_secs: cli.probe_timeout,
    };
    let settings = dpgui::settings::resolve(&overrides, &|k| std::env::var(k).ok());
    for p in &settings.problems {
        tracing::warn!(line = p.line, "{}", p.message);
    }
    // The supervisor keeps Rust's SIGPIPE=ignore: its one handshake line may go to a launcher
    // that is already gone, and that must not kill the job's supervisor.
    if cli.cmd.is_some() && !matches!(cli.cmd, Some(Cmd::Supervise { .. })) {
        // Headless output piped into `head` and the like: end quietly like other CLI tools
        // instead of reporting a broken pipe (Rust ignores SIGPIPE by default).
        // SAFETY: SIG_DFL installs no handler, so no code of ours runs in signal context.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(Cmd::Supervise { job_dir }) = &cli.cmd {
        // No runtime, no terminal: a plain blocking loop that outlives everything else.
        let code = dpgui::jobs::supervisor::run(job_dir);
        drop(guard);
        std::process::exit(code);
    }
    let code = match cli.cmd {
        Some(Cmd::Supervise { .. }) => unreachable!("handled above"),
        Some(Cmd::ScanHistory { file }) => {
            let p = dpgui::trainer::progress::scan_history(&file)?;
            println!(
                "{}",
                serde_json::json!({
                    "step": p.step,
                    "epoch": p.epoch,
                    "loss": p.loss,
                    "steps_per_epoch": p.steps_per_epoch,
                    "loss_points": p.losses.len(),
                })
            );
            0
        }
        Some(Cmd::BenchScanUi { dataset, idle }) => {
            dpgui::tui::bench::scan_ui(&dataset, std::time::Duration::from_secs_f64(idle))?
        }
        Some(Cmd::BenchTail { job_dir, seconds }) => {
            dpgui::tui::bench::tail_latency(&job_dir, std::time::Duration::from_secs_f64(seconds))?
        }
        Some(Cmd::Launch {
            config,
            gpus,
            port,
            resume,
            regenerate_cache,
            cache_only,
            trust_cache,
            reset_dataloader,
            reset_optimizer,
            nccl_p2p_off,
            expandable_segments,
            env,
            dry_run,
            json,
        }) => {
            use dpgui::trainer::launch::{JobOptions, Resume, parse_env, parse_gpus};
            let bad = |e: String| -> ! {
                eprintln!("dpgui: {e}");
                std::process::exit(2)
            };
            let gpus = parse_gpus(&gpus, dpgui::cli::gpu_snapshot().names().map(|n| n.len()))
                .unwrap_or_else(|e| bad(e));
            let port = match port.as_str() {
                "auto" => None,
                p => match p.parse::<u16>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => bad(format!("--port {p}: expected auto or a port number")),
                },
            };
            let extra_env = env
                .iter()
                .map(|e| parse_env(e))
                .collect::<Result<Vec<_>, _>>()
                .unwrap_or_else(|e| bad(e));
            let options = JobOptions {
                resume: match resume.as_deref() {
                    None => Resume::No,
                    Some("latest") => Resume::Latest,
                    Some(d) => Resume::Dir(d.to_string()),
                },
                regenerate_cache,
                cache_only,
                trust_cache,
                reset_dataloader,
                reset_optimizer,
                disable_nccl_p2p_ib: nccl_p2p_off,
                expandable_segments,
                extra_env,
            };
            let req = dpgui::jobs::launch::LaunchRequest {
                config,
                gpus,
                port,
                options,
            };
            dpgui::cli::jobs::launch(&settings, req, dry_run, json)?
        }
        Some(Cmd::Lint { config, json }) => dpgui::cli::lint::lint(&settings, &config, json)?,
        Some(Cmd::Dataset {
            dataset,
            config: train_config,
            gpus,
            rescan,
            json,
        }) => dpgui::cli::dataset::dataset(
            &settings,
            &dataset,
            train_config.as_deref(),
            gpus,
            json,
            rescan,
        )?,
        Some(Cmd::Fetch {
            repo,
            files,
            revision,
            into,
            key,
            dir,
            offline,
            list,
            json,
        }) => dpgui::cli::fetch::fetch(
            &settings,
            dpgui::cli::fetch::FetchArgs {
                repo,
                files,
                revision,
                into,
                key,
                dir,
                offline,
                list,
                json,
            },
        )?,
        Some(Cmd::Jobs { json }) => dpgui::cli::jobs::jobs(json)?,
        Some(Cmd::Stop {
            job,
            save,
            now,
            kill,
            yes,
            json,
        }) => {
            use dpgui::jobs::journal::StopKind;
            let kind = if save {
                StopKind::SaveAndStop
            } else if now {
                StopKind::SaveNow
            } else if kill {
                StopKind::Kill
            } else {
                StopKind::Stop
            };
            dpgui::cli::jobs::stop_job(&settings, &job, kind, yes, json)?
        }
        Some(Cmd::Logs {
            job,
            rank,
            launcher,
            follow,
        }) => dpgui::cli::jobs::logs(&job, rank, launcher, follow)?,
        Some(Cmd::Attach { job }) => run_tui(
            &rt,
            settings,
            cli.fake_gpus,
            cli.exit_after_first_frame,
            Some(job),
        )?,
        Some(Cmd::Doctor { json }) => rt.block_on(dpgui::cli::doctor(&settings, json))?,
        Some(Cmd::Gpus { json }) => dpgui::cli::gpus(json)?,
        Some(Cmd::Ports {
            port,
            json,
            free,
            yes,
            allow_other_users,
        }) => dpgui::cli::ports(
            &settings,
            dpgui::cli::PortsArgs {
                ports: port,
                json,
                free,
                yes,
                allow_other_users,
            },
        )?,
        None => run_tui(
            &rt,
            settings,
            cli.fake_gpus,
            cli.exit_after_first_frame,
            None,
        )?,
    };
    // The runtime may hold a blocking probe; do not wait for it on the way out.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    // exit() skips destructors: flush the log first.
    drop(guard);
    std::process::exit(code);
}

fn run_tui(
    rt: &tokio::runtime::Runtime,
    settings: dpgui::settings::Settings,
    fake_gpus: Option<usize>,
    exit_after_first_frame: bool,
    attach: Option<String>,
) -> color_eyre::Result<i32> {
    {
        {
            use dpgui::tui::theme;
            let no_color = theme::no_color_env();
            let th = match theme::load(&settings.theme, &dpgui::paths::user_themes_dir(), no_color)
            {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("dpgui: {e}");
                    std::process::exit(2);
                }
            };
            let theme_name = if no_color {
                "NO_COLOR".to_string()
            } else {
                settings.theme.clone()
            };
            let gpu_backend = fake_gpus.map(|n| {
                Box::new(dpgui::system::gpu::FakeBackend::new(
                    dpgui::system::gpu::fake_gpus(n),
                )) as Box<dyn dpgui::system::gpu::GpuBackend>
            });
            rt.block_on(dpgui::tui::run(dpgui::tui::Options {
                settings,
                theme: th,
                theme_name,
                gpu_backend,
                exit_after_first_frame,
                attach,
            }))?;
            Ok(0)
        }
    }
}
