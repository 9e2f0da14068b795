//! The exact command that starts a diffusion-pipe run through the DeepSpeed launcher.
//!
//! Two rules from the measured root cause of the port-29500 failures (reference §1-2):
//! - the port goes both before train.py (the runner's `--master_port`, used by launch.py) and
//!   after it (train.py's own `--master_port`, which overwrites MASTER_PORT last);
//! - GPUs are chosen with `--include localhost:<ids>`: the runner drops CUDA_VISIBLE_DEVICES
//!   whenever it selects GPUs itself, so that variable would be silently ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::jobs::JOB_TAG_VAR;

/// `--resume_from_checkpoint`: nothing, the latest run dir, or a named one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    #[default]
    No,
    Latest,
    Dir(String),
}

/// The user's choices for one job, besides the config and the GPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobOptions {
    #[serde(default)]
    pub resume: Resume,
    #[serde(default)]
    pub regenerate_cache: bool,
    #[serde(default)]
    pub cache_only: bool,
    #[serde(default)]
    pub trust_cache: bool,
    #[serde(default)]
    pub reset_dataloader: bool,
    #[serde(default)]
    pub reset_optimizer: bool,
    /// NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1 (needed by consumer GPUs for multi-GPU runs).
    #[serde(default)]
    pub disable_nccl_p2p_ib: bool,
    /// PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True (less fragmentation, fewer OOMs).
    #[serde(default)]
    pub expandable_segments: bool,
    /// Extra environment, passed to every rank (KEY, VALUE).
    #[serde(default)]
    pub extra_env: Vec<(String, String)>,
}

/// Everything the command depends on.
#[derive(Debug, Clone)]
pub struct LaunchInput<'a> {
    /// The Python environment's `bin/` (holds `deepspeed` and `ninja`).
    pub venv_bin: &'a Path,
    pub checkout: &'a Path,
    /// Absolute path of the main config.
    pub config: &'a Path,
    pub gpus: &'a [u32],
    pub port: u16,
    pub job_id: &'a str,
    /// `--enable_each_rank_log` directory (fresh per job: file names are per second).
    pub ranks_dir: &'a Path,
    pub options: &'a JobOptions,
    /// No NVIDIA GPU: ranks run on CPU and the launcher needs LOCAL_SIZE for `--include`.
    pub cpu_ranks: bool,
    /// The current PATH, to put the venv's bin/ in front of.
    pub path_var: Option<&'a str>,
}

/// A command as argv, working directory and environment changes (never a shell string).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set on top of the inherited environment, in order.
    pub env: Vec<(String, String)>,
}

impl LaunchPlan {
    /// The full argv, program first.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// A copy-pasteable rendering for display only (quoted where needed); never executed.
    pub fn display(&self) -> String {
        self.argv()
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// POSIX single-quote quoting for display.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `localhost:0,1`.
pub fn include_arg(gpus: &[u32]) -> String {
    let ids: Vec<String> = gpus.iter().map(u32::to_string).collect();
    format!("localhost:{}", ids.join(","))
}

/// Builds the command. Pure: the caller checks paths and chooses the port.
pub fn plan(i: &LaunchInput) -> LaunchPlan {
    let port = i.port.to_string();
    let mut args = vec![
        "--include".to_string(),
        include_arg(i.gpus),
        format!("--master_port={port}"),
        format!("--enable_each_rank_log={}", i.ranks_dir.display()),
        "train.py".to_string(),
        "--deepspeed".to_string(),
        "--config".to_string(),
        i.config.display().to_string(),
        format!("--master_port={port}"),
    ];
    let o = i.options;
    match &o.resume {
        Resume::No => {}
        Resume::Latest => args.push("--resume_from_checkpoint".into()),
        Resume::Dir(d) => {
            args.push("--resume_from_checkpoint".into());
            args.push(d.clone());
        }
    }
    for (on, flag) in [
        (o.regenerate_cache, "--regenerate_cache"),
        (o.cache_only, "--cache_only"),
        (o.trust_cache, "--trust_cache"),
        (o.reset_dataloader, "--reset_dataloader"),
        (o.reset_optimizer, "--reset_optimizer"),
    ] {
        if on {
            args.push(flag.into());
        }
    }

    let bin = i.venv_bin.display().to_string();
    let path = match i.path_var.filter(|p| !p.is_empty()) {
        Some(p) => format!("{bin}:{p}"),
        None => bin,
    };
    let mut env = vec![
        ("PATH".to_string(), path),
        (JOB_TAG_VAR.to_string(), i.job_id.to_string()),
    ];
    if i.cpu_ranks {
        env.push(("LOCAL_SIZE".into(), i.gpus.len().to_string()));
    }
    if o.disable_nccl_p2p_ib {
        env.push(("NCCL_P2P_DISABLE".into(), "1".into()));
        env.push(("NCCL_IB_DISABLE".into(), "1".into()));
    }
    if o.expandable_segments {
        env.push((
            "PYTORCH_CUDA_ALLOC_CONF".into(),
            "expandable_segments:True".into(),
        ));
    }
    for (k, v) in &o.extra_env {
        // The tag identifies the job's processes; a user value must not replace it.
        if k != JOB_TAG_VAR {
            env.push((k.clone(), v.clone()));
        }
    }
    LaunchPlan {
        program: i.venv_bin.join("deepspeed"),
        args,
        cwd: i.checkout.to_path_buf(),
        env,
    }
}

/// Parses `0,1,3` (or `all` with the count of GPUs present) into sorted unique ids.
pub fn parse_gpus(text: &str, present: Option<usize>) -> Result<Vec<u32>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return match present {
            Some(n) if n > 0 => Ok((0..n as u32).collect()),
            _ => Err("`all` needs NVIDIA GPUs, and none were found; list ids like 0,1".into()),
        };
    }
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let id: u32 = part
            .parse()
            .map_err(|_| format!("`{part}` is not a GPU id (expected e.g. 0,1)"))?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    if ids.is_empty() {
        return Err("no GPU given (expected e.g. --gpus 0 or --gpus 0,1)".into());
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Parses `KEY=VALUE` for extra environment.
pub fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v))
            if !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !k.as_bytes()[0].is_ascii_digit() =>
        {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(opts: &'a JobOptions, gpus: &'a [u32]) -> LaunchInput<'a> {
        LaunchInput {
            venv_bin: Path::new("/venv dir/bin"),
            checkout: Path::new("/dp"),
            config: Path::new("/cfg/my 'run'.toml"),
            gpus,
            port: 29517,
            job_id: "job1",
            ranks_dir: Path::new("/state/jobs/job1/ranks"),
            options: opts,
            cpu_ranks: false,
            path_var: Some("/usr/bin:/bin"),
        }
    }

    #[test]
    fn the_port_goes_before_and_after_train_py_and_gpus_go_through_include() {
        let opts = JobOptions::default();
        let p = plan(&input(&opts, &[0, 2]));
        assert_eq!(
            p.argv(),
            vec![
                "/venv dir/bin/deepspeed",
                "--include",
                "localhost:0,2",
                "--master_port=29517",
                "--enable_each_rank_log=/state/jobs/job1/ranks",
                "train.py",
                "--deepspeed",
                "--config",
                "/cfg/my 'run'.toml",
                "--master_port=29517",
            ]
        );
        assert_eq!(p.cwd, PathBuf::from("/dp"));
        assert_eq!(
            p.env,
            vec![
                (
                    "PATH".to_string(),
                    "/venv dir/bin:/usr/bin:/bin".to_string()
                ),
                (JOB_TAG_VAR.to_string(), "job1".to_string()),
            ]
        );
        assert!(!p.argv().iter().any(|a| a.contains("num_gpus")));
        assert!(!p.env.iter().any(|(k, _)| k == "CUDA_VISIBLE_DEVICES"));
    }

    #[test]
    fn options_map_to_train_py_flags_after_the_script() {
        let opts = JobOptions {
            resume: Resume::Dir("20260101_00-00-00".into()),
            regenerate_cache: true,
            cache_only: true,
            trust_cache: true,
            reset_dataloader: true,
            reset_optimizer: true,
            disable_nccl_p2p_ib: true,
            expandable_segments: true,
            extra_env: vec![
                ("DEEPSPEED_TIMEOUT".into(), "60".into()),
                (JOB_TAG_VAR.into(), "spoof".into()),
            ],
        };
        let mut i = input(&opts, &[1]);
        i.cpu_ranks = true;
        let p = plan(&i);
        let script = p.args.iter().position(|a| a == "train.py").unwrap();
        let after = &p.args[script + 1..];
        for flag in [
            "--regenerate_cache",
            "--cache_only",
            "--trust_cache",
            "--reset_dataloader",
            "--reset_optimizer",
        ] {
            assert!(after.contains(&flag.to_string()), "{flag}");
        }
        let r = after
            .iter()
            .position(|a| a == "--resume_from_checkpoint")
            .unwrap();
        assert_eq!(after[r + 1], "20260101_00-00-00");
        let env: std::collections::HashMap<_, _> = p.env.iter().cloned().collect();
        assert_eq!(env["LOCAL_SIZE"], "1");
        assert_eq!(env["NCCL_P2P_DISABLE"], "1");
        assert_eq!(env["NCCL_IB_DISABLE"], "1");
        assert_eq!(env["PYTORCH_CUDA_ALLOC_CONF"], "expandable_segments:True");
        assert_eq!(env["DEEPSPEED_TIMEOUT"], "60");
        assert_eq!(env[JOB_TAG_VAR], "job1", "the job tag cannot be overridden");

        let latest = JobOptions {
            resume: Resume::Latest,
            ..Default::default()
        };
        let p = plan(&input(&latest, &[0]));
        assert_eq!(p.args.last().unwrap(), "--resume_from_checkpoint");
    }

    #[test]
    fn display_quotes_what_a_shell_would_split() {
        let opts = JobOptions::default();
        let d = plan(&input(&opts, &[0])).display();
        assert!(d.starts_with("'/venv dir/bin/deepspeed' --include localhost:0"));
        assert!(d.contains(r"'/cfg/my '\''run'\''.toml'"), "{d}");
    }

    #[test]
    fn gpu_lists_and_env_pairs_are_validated() {
        assert_eq!(parse_gpus("1, 0,1", None).unwrap(), vec![0, 1]);
        assert_eq!(parse_gpus("all", Some(3)).unwrap(), vec![0, 1, 2]);
        assert!(parse_gpus("all", None).is_err());
        assert!(parse_gpus("x", None).is_err());
        assert!(parse_gpus("", None).is_err());
        assert_eq!(
            parse_env("A_1=x=y").unwrap(),
            ("A_1".to_string(), "x=y".to_string())
        );
        assert!(parse_env("1A=x").is_err());
        assert!(parse_env("noequals").is_err());
    }
}
