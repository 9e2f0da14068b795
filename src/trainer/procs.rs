//! Recognising the processes of a DeepSpeed / diffusion-pipe run from their argv.
//!
//! The tree is `deepspeed` (runner) → `python -m deepspeed.launcher.launch` → one
//! `python -u train.py --local_rank=N ...` per rank (reference section 3). Matching looks at argv
//! structure (interpreter, script, module, options), never at a process name alone.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role")]
pub enum Role {
    /// The `deepspeed` command (deepspeed/launcher/runner.py).
    Runner,
    /// `python -m deepspeed.launcher.launch`, which spawns the ranks.
    Launcher,
    /// A training rank: `train.py --local_rank=N`.
    Rank { local_rank: u32 },
}

impl Role {
    pub fn label(&self) -> String {
        match self {
            Role::Runner => "deepspeed runner".into(),
            Role::Launcher => "launcher".into(),
            Role::Rank { local_rank } => format!("rank {local_rank}"),
        }
    }
}

/// What an argv tells about a training process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainingProc {
    pub role: Role,
    /// `--master_port` as given to this process, if any.
    pub master_port: Option<u16>,
    /// `--config` as given to train.py (runner and ranks).
    pub config: Option<String>,
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

fn is_python(arg0: &str) -> bool {
    let b = basename(arg0);
    b == "python" || b.starts_with("python3") || b.starts_with("python2")
}

/// Value of `--name=V` or `--name V` among `args`.
pub fn option_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(rest) = a.strip_prefix(name) {
            if let Some(v) = rest.strip_prefix('=') {
                return Some(v);
            }
            if rest.is_empty() {
                return it.next().map(|s| s.as_str());
            }
        }
    }
    None
}

/// Splits argv into (program-or-script, module, args after it), skipping the interpreter and
/// its own options so `python -u train.py` and `/venv/bin/deepspeed` look alike.
fn script_and_rest(argv: &[String]) -> Option<(Option<&str>, Option<&str>, &[String])> {
    let first = argv.first()?;
    if !is_python(first) {
        return Some((Some(first.as_str()), None, &argv[1..]));
    }
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if a == "-m" {
            return argv
                .get(i + 1)
                .map(|m| (None, Some(m.as_str()), &argv[(i + 2).min(argv.len())..]));
        }
        if let Some(m) = a.strip_prefix("-m").filter(|m| !m.is_empty()) {
            return Some((None, Some(m), &argv[i + 1..]));
        }
        if a == "-c" {
            return None;
        }
        if a.starts_with('-') {
            // Interpreter options that take a value.
            if matches!(a, "-W" | "-X" | "-Q") {
                i += 1;
            }
            i += 1;
            continue;
        }
        return Some((Some(a), None, &argv[i + 1..]));
    }
    None
}

/// Classifies an argv; `None` for anything that is not part of a DeepSpeed / diffusion-pipe run.
pub fn classify(argv: &[String]) -> Option<TrainingProc> {
    let (script, module, rest) = script_and_rest(argv)?;
    let role = match (script.map(basename), module) {
        (_, Some("deepspeed.launcher.launch")) => Role::Launcher,
        (_, Some("deepspeed.launcher.runner")) | (Some("deepspeed"), None) => Role::Runner,
        (Some("train.py"), None) => {
            let rank = option_value(rest, "--local_rank")?;
            Role::Rank {
                local_rank: rank.parse().ok()?,
            }
        }
        _ => return None,
    };
    // The runner's own options stop at the script; for the runner we report the port it gives
    // train.py when both are present, since that is the one rank 0 listens on (section 2).
    let master_port = option_value(rest, "--master_port").and_then(|p| p.parse().ok());
    let after_script = match role {
        Role::Runner | Role::Launcher => rest
            .iter()
            .position(|a| basename(a) == "train.py")
            .map(|i| &rest[i + 1..]),
        Role::Rank { .. } => Some(rest),
    };
    let train_port = after_script
        .and_then(|a| option_value(a, "--master_port"))
        .and_then(|p| p.parse().ok());
    let config = after_script
        .and_then(|a| option_value(a, "--config"))
        .map(str::to_owned);
    Some(TrainingProc {
        role,
        master_port: train_port.or(master_port),
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn runner_launcher_and_ranks_are_recognised() {
        let runner = classify(&v(
            "/venv/bin/python3 /venv/bin/deepspeed --include localhost:0 \
             --master_port=29611 train.py --deepspeed --config /c/main.toml --master_port=29611",
        ))
        .unwrap();
        assert_eq!(runner.role, Role::Runner);
        assert_eq!(runner.master_port, Some(29611));
        assert_eq!(runner.config.as_deref(), Some("/c/main.toml"));

        let direct = classify(&v("deepspeed --num_gpus=1 train.py --config x.toml")).unwrap();
        assert_eq!(direct.role, Role::Runner);
        assert_eq!(direct.master_port, None);

        let launcher = classify(&v("/usr/bin/python3 -u -m deepspeed.launcher.launch \
             --world_info=eyJsb2NhbGhvc3QiOiBbMF19 --master_addr=127.0.0.1 --master_port=29500 \
             --enable_each_rank_log=None train.py --deepspeed --config c.toml"))
        .unwrap();
        assert_eq!(launcher.role, Role::Launcher);
        // train.py got no --master_port, so the launcher's own (the one that is overridden) shows.
        assert_eq!(launcher.master_port, Some(29500));

        let rank = classify(&v(
            "/venv/bin/python -u train.py --local_rank=1 --deepspeed --config c.toml --master_port 30001",
        ))
        .unwrap();
        assert_eq!(rank.role, Role::Rank { local_rank: 1 });
        assert_eq!(rank.master_port, Some(30001));
    }

    #[test]
    fn look_alikes_are_not_training_processes() {
        for argv in [
            "python3 train.py --config x.toml", // no --local_rank: not a rank
            "python3 other.py --local_rank=0",  // not train.py
            "vim train.py",                     // an editor on the file
            "grep deepspeed /var/log/x",        // the word alone
            "python3 -c import deepspeed",      // inline code
            "python3 -m pip install deepspeed", // another module
            "/usr/bin/deepspeed-helper --local_rank", // another program
            "python3 train.py --local_rank=abc",
            "",
        ] {
            assert_eq!(classify(&v(argv)), None, "{argv}");
        }
    }

    #[test]
    fn option_values_in_both_spellings() {
        let a = v("--a=1 --b 2 --c");
        assert_eq!(option_value(&a, "--a"), Some("1"));
        assert_eq!(option_value(&a, "--b"), Some("2"));
        assert_eq!(option_value(&a, "--c"), None);
        assert_eq!(option_value(&a, "--d"), None);
    }
}
