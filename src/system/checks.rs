//! Environment checks shown in the Environment tab and by `dpgui doctor`.
//!
//! [`evaluate`] is pure: it turns already-gathered facts into a list of checks, each with a
//! one-line fix. [`gather`] does the I/O (locate Python, inspect the checkout, run the probe) and
//! then evaluates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::system::checkout::{self, CheckoutState};
use crate::system::python::{self, ProbeReport, ProbeResult, PythonChoice, TorchInfo};
use crate::trainer::pin;

/// Outcome of one check. Order of badness: Fail > Warn > Pending > Info > Pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Pending,
    Info,
}

impl Status {
    fn badness(&self) -> u8 {
        match self {
            Status::Pass => 0,
            Status::Info => 1,
            Status::Pending => 2,
            Status::Warn => 3,
            Status::Fail => 4,
        }
    }
}

/// One environment check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `python.version`.
    pub id: &'static str,
    pub title: String,
    pub status: Status,
    pub detail: String,
    /// One line, a concrete command where possible.
    pub fix: Option<String>,
}

/// Everything [`evaluate`] looks at.
pub struct CheckInputs<'a> {
    pub python: &'a PythonChoice,
    /// `None`: the probe is still running (checks that need it are `Pending`).
    pub probe: Option<&'a ProbeResult>,
    pub checkout_dir: &'a Path,
    pub checkout: &'a CheckoutState,
    /// GPU names from NVML; `None` when NVML is unavailable.
    pub gpu_names: Option<&'a [String]>,
    pub hostfile_exists: bool,
    /// (`NCCL_P2P_DISABLE`, `NCCL_IB_DISABLE`) as set in dpgui's environment.
    pub nccl_env: (Option<String>, Option<String>),
}

/// Where DeepSpeed looks for a hostfile (its presence switches the launcher to multi-node mode).
pub const HOSTFILE: &str = "/job/hostfile";

const TORCH_INDEX: &str = "https://download.pytorch.org/whl/cu128";

/// Stable check ids, in the order [`evaluate`] emits them.
pub const CHECK_IDS: &[&str] = &[
    "python.found",
    "python.probe",
    "python.version",
    "torch.installed",
    "torch.cuda_build",
    "cuda.devices",
    "deepspeed.version",
    "python.requirements",
    "flash_attn",
    "checkout.present",
    "checkout.commit",
    "checkout.submodules",
    "nccl.consumer_gpus",
    "deepspeed.hostfile",
];

fn check(
    id: &'static str,
    title: &str,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        id,
        title: title.to_string(),
        status,
        detail: detail.into(),
        fix,
    }
}

/// Evaluates all checks. Pure. Checks that cannot apply (no interpreter found, probe failed, no
/// checkout) are left out rather than reported as unknown; the check that explains why fails.
pub fn evaluate(inp: &CheckInputs) -> Vec<Check> {
    let mut out = Vec::new();
    python_checks(inp, &mut out);
    checkout_checks(inp, &mut out);
    out.push(nccl_check(inp));
    out.push(hostfile_check(inp));
    out
}

/// The worst status of a list (Fail > Warn > Pending > Info > Pass); `Pass` when empty.
pub fn worst(checks: &[Check]) -> Status {
    checks
        .iter()
        .map(|c| c.status.clone())
        .max_by_key(Status::badness)
        .unwrap_or(Status::Pass)
}

/// Whether any check failed (`dpgui doctor` exits non-zero then).
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

// ---------------------------------------------------------------------------------------------

fn python_checks(inp: &CheckInputs, out: &mut Vec<Check>) {
    let choice = inp.python;
    let Some(py_path) = choice.path.as_deref() else {
        let mut detail = "no Python interpreter found".to_string();
        if let Some(n) = &choice.note {
            detail = format!("{detail}: {n}");
        }
        out.push(check(
            "python.found",
            "Python interpreter",
            Status::Fail,
            detail,
            Some(
                "pass --python /path/to/venv (or set DPGUI_PYTHON=/path/to/venv/bin/python)"
                    .to_string(),
            ),
        ));
        return;
    };
    let py = shell_quote(&py_path.display().to_string());
    let mut detail = format!("{} (from {})", py_path.display(), choice.source.describe());
    if let Some(n) = &choice.note {
        detail = format!("{detail}; {n}");
    }
    out.push(check(
        "python.found",
        "Python interpreter",
        Status::Pass,
        detail,
        None,
    ));

    let report = match inp.probe {
        None => {
            let waiting = format!("probing {} ...", py_path.display());
            for (id, title) in [
                ("python.probe", "Python probe"),
                ("python.version", "Python version"),
                ("torch.installed", "torch"),
                ("deepspeed.version", "DeepSpeed"),
                ("python.requirements", "diffusers / transformers / peft"),
                ("flash_attn", "flash-attn"),
            ] {
                out.push(check(id, title, Status::Pending, waiting.clone(), None));
            }
            return;
        }
        Some(ProbeResult::Failed { reason }) => {
            let fix = if reason.contains("timed out") {
                format!("press r to retry, or time it: {py} -c \"import torch\"")
            } else {
                format!("{py} -c \"import sys; print(sys.version)\"")
            };
            out.push(check(
                "python.probe",
                "Python probe",
                Status::Fail,
                reason.clone(),
                Some(fix),
            ));
            return;
        }
        Some(ProbeResult::Ok(r)) => r,
    };

    let pinfo = &report.python;
    let mut probe_detail = format!(
        "Python {} at {}",
        pinfo.version(),
        pinfo.executable.as_deref().unwrap_or("?")
    );
    if !report.errors.is_empty() {
        probe_detail = format!(
            "{probe_detail}; script errors: {}",
            report.errors.join("; ")
        );
    }
    out.push(check(
        "python.probe",
        "Python probe",
        if report.errors.is_empty() {
            Status::Pass
        } else {
            Status::Warn
        },
        probe_detail,
        None,
    ));

    out.push(if pin::python_version_ok(pinfo.major, pinfo.minor) {
        check(
            "python.version",
            "Python version",
            Status::Pass,
            format!("Python {}", pinfo.version()),
            None,
        )
    } else {
        let (maj, min) = pin::pin().python_min;
        let venv = shell_quote(&inp.checkout_dir.join("venv").display().to_string());
        check(
            "python.version",
            "Python version",
            Status::Fail,
            format!(
                "Python {}: {}",
                pinfo.version(),
                pin::python_version_reason()
            ),
            Some(format!(
                "python{maj}.{min} -m venv {venv} (or: uv venv --python {maj}.{min} {venv})"
            )),
        )
    });

    torch_checks(inp, report, &py, out);

    let pinned_ds = &pin::pin().deepspeed;
    let ds_fix = Some(format!("{py} -m pip install deepspeed=={pinned_ds}"));
    out.push(match report.packages.deepspeed.as_deref() {
        None => check(
            "deepspeed.version",
            "DeepSpeed",
            Status::Fail,
            format!("deepspeed is not installed (diffusion-pipe pins {pinned_ds})"),
            ds_fix,
        ),
        Some(v) if pin::deepspeed_matches(v) => check(
            "deepspeed.version",
            "DeepSpeed",
            Status::Pass,
            format!("deepspeed {v}"),
            None,
        ),
        Some(v) => check(
            "deepspeed.version",
            "DeepSpeed",
            Status::Warn,
            format!("deepspeed {v} installed; diffusion-pipe pins {pinned_ds}"),
            ds_fix,
        ),
    });

    let p = &report.packages;
    let reqs = [
        ("diffusers", &p.diffusers),
        ("transformers", &p.transformers),
        ("peft", &p.peft),
    ];
    let missing: Vec<&str> = reqs
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    let req_file = shell_quote(
        &inp.checkout_dir
            .join("requirements.txt")
            .display()
            .to_string(),
    );
    out.push(if missing.is_empty() {
        let found: Vec<String> = reqs
            .iter()
            .map(|(n, v)| format!("{n} {}", v.as_deref().unwrap_or("?")))
            .collect();
        check(
            "python.requirements",
            "diffusers / transformers / peft",
            Status::Pass,
            found.join(", "),
            None,
        )
    } else {
        check(
            "python.requirements",
            "diffusers / transformers / peft",
            Status::Fail,
            format!("not installed: {}", missing.join(", ")),
            Some(format!("{py} -m pip install -r {req_file}")),
        )
    });

    out.push(match p.flash_attn.as_deref() {
        Some(v) => check(
            "flash_attn",
            "flash-attn",
            Status::Pass,
            format!("flash-attn {v}"),
            None,
        ),
        None => check(
            "flash_attn",
            "flash-attn",
            Status::Info,
            "not installed; only the wan and hunyuan_image models need it",
            Some(format!(
                "{py} -m pip install flash-attn --no-build-isolation"
            )),
        ),
    });
}

fn torch_checks(inp: &CheckInputs, report: &ProbeReport, py: &str, out: &mut Vec<Check>) {
    let install = format!("{py} -m pip install torch --index-url {TORCH_INDEX}");
    let reinstall =
        format!("{py} -m pip install --force-reinstall torch --index-url {TORCH_INDEX}");
    let t: &TorchInfo = match (&report.torch, report.packages.torch.as_deref()) {
        (Some(t), _) if t.imported => t,
        (Some(t), v) => {
            out.push(check(
                "torch.installed",
                "torch",
                Status::Fail,
                format!(
                    "torch {} is installed but `import torch` failed: {}",
                    v.unwrap_or("?"),
                    t.import_error.as_deref().unwrap_or("unknown error")
                ),
                Some(reinstall),
            ));
            return;
        }
        (None, _) => {
            out.push(check(
                "torch.installed",
                "torch",
                Status::Fail,
                "torch is not installed (install it before requirements.txt)",
                Some(install),
            ));
            return;
        }
    };
    let version = t
        .version
        .clone()
        .or_else(|| report.packages.torch.clone())
        .unwrap_or_else(|| "?".to_string());
    out.push(check(
        "torch.installed",
        "torch",
        Status::Pass,
        format!("torch {version}"),
        None,
    ));

    let nvml_gpus = inp.gpu_names.map(<[String]>::len).unwrap_or(0);
    out.push(match &t.cuda {
        Some(c) => check(
            "torch.cuda_build",
            "torch CUDA build",
            Status::Pass,
            format!("built for CUDA {c}"),
            None,
        ),
        None => check(
            "torch.cuda_build",
            "torch CUDA build",
            if nvml_gpus > 0 {
                Status::Fail
            } else {
                Status::Warn
            },
            format!("torch {version} is a CPU-only build (torch.version.cuda is None)"),
            Some(reinstall.clone()),
        ),
    });

    let torch_count = if t.cuda_available { t.device_count } else { 0 };
    let cuda_err = t
        .cuda_error
        .as_deref()
        .map(|e| format!("; {e}"))
        .unwrap_or_default();
    out.push(if torch_count == 0 {
        if nvml_gpus > 0 {
            check(
                "cuda.devices",
                "CUDA devices",
                Status::Fail,
                format!("NVML sees {nvml_gpus} GPU(s) but torch sees none{cuda_err}"),
                Some(if t.cuda.is_none() {
                    reinstall
                } else {
                    "check CUDA_VISIBLE_DEVICES and the driver (nvidia-smi); the driver must \
                     support the CUDA version torch was built for"
                        .to_string()
                }),
            )
        } else {
            let why = if inp.gpu_names.is_none() {
                "NVML unavailable (no NVIDIA driver?)"
            } else {
                "no NVIDIA GPU found"
            };
            check(
                "cuda.devices",
                "CUDA devices",
                Status::Warn,
                format!("no GPU: {why}; diffusion-pipe trains only on CUDA GPUs{cuda_err}"),
                Some("nvidia-smi".to_string()),
            )
        }
    } else {
        let names: Vec<&str> = t.devices.iter().map(|d| d.name.as_str()).collect();
        let unsupported: Vec<String> = t
            .devices
            .iter()
            .filter_map(|d| {
                let cap = d.capability?;
                (!arch_supported(&t.arch_list, cap))
                    .then(|| format!("{} (sm_{}{})", d.name, cap.0, cap.1))
            })
            .collect();
        if !unsupported.is_empty() {
            check(
                "cuda.devices",
                "CUDA devices",
                Status::Fail,
                format!(
                    "torch {version} has no kernels for {} (built for {})",
                    unsupported.join(", "),
                    t.arch_list.join(" ")
                ),
                Some(reinstall),
            )
        } else {
            let mut detail = format!("torch sees {torch_count} GPU(s): {}", names.join(", "));
            if let Some(n) = inp.gpu_names.map(<[String]>::len)
                && n > torch_count as usize
            {
                detail.push_str(&format!(
                    " (NVML sees {n}; CUDA_VISIBLE_DEVICES may hide some)"
                ));
            }
            check("cuda.devices", "CUDA devices", Status::Pass, detail, None)
        }
    });
}

/// Whether a torch build with `arch_list` (`sm_80`, `sm_90a`, `compute_90`, ...) can run on a
/// device of compute capability `cap`: a cubin for the same major and a minor <= the device's,
/// or PTX (`compute_XY`) for any capability <= the device's. An empty list means unknown: yes.
pub fn arch_supported(arch_list: &[String], cap: (u32, u32)) -> bool {
    if arch_list.is_empty() {
        return true;
    }
    arch_list.iter().any(|a| {
        let (ptx, digits) = if let Some(d) = a.strip_prefix("sm_") {
            (false, d)
        } else if let Some(d) = a.strip_prefix("compute_") {
            (true, d)
        } else {
            return false;
        };
        let digits: String = digits.chars().take_while(char::is_ascii_digit).collect();
        if digits.len() < 2 {
            return false;
        }
        let (maj, min) = digits.split_at(digits.len() - 1);
        let (Ok(maj), Ok(min)) = (maj.parse::<u32>(), min.parse::<u32>()) else {
            return false;
        };
        if ptx {
            (maj, min) <= cap
        } else {
            maj == cap.0 && min <= cap.1
        }
    })
}

fn checkout_checks(inp: &CheckInputs, out: &mut Vec<Check>) {
    let c = inp.checkout;
    let p = pin::pin();
    let dir = shell_quote(&inp.checkout_dir.display().to_string());
    let clone = format!("git clone --recurse-submodules {} {dir}", p.repository);
    if !c.exists {
        out.push(check(
            "checkout.present",
            "diffusion-pipe checkout",
            Status::Fail,
            format!("{} does not exist", inp.checkout_dir.display()),
            Some(clone),
        ));
        return;
    }
    if !c.is_diffusion_pipe {
        out.push(check(
            "checkout.present",
            "diffusion-pipe checkout",
            Status::Fail,
            format!(
                "{} has no train.py: not a diffusion-pipe checkout",
                inp.checkout_dir.display()
            ),
            Some(format!(
                "point dpgui at a diffusion-pipe checkout, or move it away and: {clone}"
            )),
        ));
    } else {
        out.push(check(
            "checkout.present",
            "diffusion-pipe checkout",
            Status::Pass,
            inp.checkout_dir.display().to_string(),
            None,
        ));
    }

    let branch = c
        .head_ref
        .as_deref()
        .map(|r| format!(" ({})", r.strip_prefix("refs/heads/").unwrap_or(r)))
        .unwrap_or_default();
    out.push(match (&c.head, c.matches_pin) {
        (Some(h), Some(true)) => check(
            "checkout.commit",
            "Checkout commit",
            Status::Pass,
            format!("{}{branch} is the pinned commit", short(h)),
            None,
        ),
        (Some(h), _) => check(
            "checkout.commit",
            "Checkout commit",
            Status::Warn,
            format!(
                "HEAD is {}{branch}; dpgui is tested with {}",
                short(h),
                p.commit
            ),
            Some(format!(
                "git -C {dir} fetch origin && git -C {dir} checkout {} && git -C {dir} \
                 submodule update --init --recursive",
                p.commit
            )),
        ),
        (None, _) => check(
            "checkout.commit",
            "Checkout commit",
            Status::Warn,
            format!(
                "cannot read HEAD: {}",
                c.head_error.as_deref().unwrap_or("unknown")
            ),
            Some(format!("git -C {dir} rev-parse HEAD")),
        ),
    });

    let missing = c.missing_submodules();
    let total = c.submodules.len();
    out.push(if missing.is_empty() {
        check(
            "checkout.submodules",
            "Submodules",
            Status::Pass,
            format!("all {total} submodules initialised"),
            None,
        )
    } else {
        let comfy_missing = missing.iter().any(|m| m.ends_with("/ComfyUI"));
        let mut detail = format!(
            "{} of {total} not initialised: {}",
            missing.len(),
            missing.join(", ")
        );
        if comfy_missing {
            detail.push_str(" (submodules/ComfyUI is needed by every model)");
        }
        check(
            "checkout.submodules",
            "Submodules",
            if comfy_missing {
                Status::Fail
            } else {
                Status::Warn
            },
            detail,
            Some(format!("git -C {dir} submodule update --init --recursive")),
        )
    });
}

fn nccl_check(inp: &CheckInputs) -> Check {
    const TITLE: &str = "NCCL on consumer GPUs";
    let names = inp.gpu_names.unwrap_or(&[]);
    let consumer: Vec<&str> = names
        .iter()
        .filter(|n| is_consumer_gpu(n))
        .map(String::as_str)
        .collect();
    let is_one = |v: &Option<String>| v.as_deref().map(str::trim) == Some("1");
    let both_set = is_one(&inp.nccl_env.0) && is_one(&inp.nccl_env.1);
    if consumer.is_empty() || names.len() < 2 {
        let why = if names.len() < 2 {
            "fewer than two GPUs"
        } else {
            "no consumer (RTX 40xx/50xx) GPUs"
        };
        return check(
            "nccl.consumer_gpus",
            TITLE,
            Status::Info,
            format!("not needed: {why}"),
            None,
        );
    }
    if both_set {
        return check(
            "nccl.consumer_gpus",
            TITLE,
            Status::Pass,
            "NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1 are set",
            None,
        );
    }
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unset".to_string());
    check(
        "nccl.consumer_gpus",
        TITLE,
        Status::Warn,
        format!(
            "{} GPUs incl. {}: multi-GPU training needs NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1 \
             (now {} / {}); dpgui sets them for its jobs, set them when you run deepspeed by hand",
            names.len(),
            consumer[0],
            show(&inp.nccl_env.0),
            show(&inp.nccl_env.1)
        ),
        Some("export NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1".to_string()),
    )
}

fn hostfile_check(inp: &CheckInputs) -> Check {
    if inp.hostfile_exists {
        check(
            "deepspeed.hostfile",
            "DeepSpeed hostfile",
            Status::Warn,
            format!("{HOSTFILE} exists: the DeepSpeed launcher switches to multi-node mode"),
            Some(format!("mv {HOSTFILE} {HOSTFILE}.bak")),
        )
    } else {
        check(
            "deepspeed.hostfile",
            "DeepSpeed hostfile",
            Status::Pass,
            format!("no {HOSTFILE}"),
            None,
        )
    }
}

/// The consumer-card matcher (GeForce RTX 40xx/50xx) lives with the GPU code; re-exported here
/// because the NCCL advice depends on it.
pub use crate::system::gpu::is_consumer_gpu;

fn short(hash: &str) -> &str {
    hash.get(..7).unwrap_or(hash)
}

/// Quotes a word for display in a shell command line when it needs it.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./+=:,@%~".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

// ---------------------------------------------------------------------------------------------
// I/O

/// What the checks read from the machine, except the slow Python probe: the Environment tab
/// shows these checks at once and again when the probe has answered; `dpgui doctor` waits.
#[derive(Debug, Clone)]
pub struct CheckFacts {
    pub python: PythonChoice,
    pub checkout_dir: PathBuf,
    pub checkout: CheckoutState,
    /// `None` when NVML is unavailable.
    pub gpu_names: Option<Vec<String>>,
    pub hostfile_exists: bool,
    pub nccl_env: (Option<String>, Option<String>),
}

impl CheckFacts {
    /// Locates Python, inspects the checkout, reads the process environment and
    /// `/job/hostfile`.
    pub fn read(
        configured_python: Option<&Path>,
        checkout_dir: &Path,
        gpu_names: Option<Vec<String>>,
    ) -> Self {
        let env = |k: &str| std::env::var(k).ok();
        CheckFacts {
            python: python::locate_python(configured_python, &env, Some(checkout_dir)),
            checkout_dir: checkout_dir.to_path_buf(),
            checkout: checkout::inspect_checkout(checkout_dir),
            gpu_names,
            hostfile_exists: Path::new(HOSTFILE).exists(),
            nccl_env: (env("NCCL_P2P_DISABLE"), env("NCCL_IB_DISABLE")),
        }
    }

    /// Runs the Python probe; `None` when no interpreter was found.
    pub async fn probe(&self, timeout: Duration) -> Option<ProbeResult> {
        match &self.python.path {
            Some(p) => Some(python::probe(p, timeout).await),
            None => None,
        }
    }

    /// The checks; `probe: None` marks the probe's checks as pending.
    pub fn evaluate(&self, probe: Option<&ProbeResult>) -> Vec<Check> {
        evaluate(&CheckInputs {
            python: &self.python,
            probe,
            checkout_dir: &self.checkout_dir,
            checkout: &self.checkout,
            gpu_names: self.gpu_names.as_deref(),
            hostfile_exists: self.hostfile_exists,
            nccl_env: self.nccl_env.clone(),
        })
    }
}

/// Reads the facts, runs the probe and evaluates (what `dpgui doctor` prints).
pub async fn gather(
    configured_python: Option<&Path>,
    checkout_dir: &Path,
    gpu_names: Option<Vec<String>>,
    probe_timeout: Duration,
) -> Vec<Check> {
    let facts = CheckFacts::read(configured_python, checkout_dir, gpu_names);
    let probe = facts.probe(probe_timeout).await;
    facts.evaluate(probe.as_ref())
}

/// Problems in dpgui's own config file, as checks (so `doctor` and the tab both show them).
pub fn config_checks(settings: &crate::settings::Settings) -> Vec<Check> {
    settings
        .problems
        .iter()
        .map(|p| Check {
            id: "dpgui.config",
            title: "dpgui config".into(),
            status: Status::Warn,
            detail: format!(
                "{}{}: {}",
                settings.config_file.display(),
                if p.line > 0 {
                    format!(":{}", p.line)
                } else {
                    String::new()
                },
                p.message
            ),
            fix: Some(format!(
                "edit {} (keys: {})",
                settings.config_file.display(),
                crate::settings::KEYS
                    .iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::checkout::{Submodule, SubmodulesSource};
    use crate::system::python::{Packages, PythonInfo, PythonSource, TorchDevice};

    const HEAD: &str = "8f83dbf0aa11bb22cc33dd44ee55ff6677889900";

    fn found() -> PythonChoice {
        PythonChoice {
            path: Some(PathBuf::from("/dp/venv/bin/python")),
            source: PythonSource::CheckoutVenv,
            note: None,
        }
    }

    fn good_report() -> ProbeReport {
        ProbeReport {
            python: PythonInfo {
                major: 3,
                minor: 12,
                micro: 3,
                executable: Some("/dp/venv/bin/python".into()),
                prefix: Some("/dp/venv".into()),
                base_prefix: Some("/usr".into()),
            },
            packages: Packages {
                torch: Some("2.9.0".into()),
                deepspeed: Some("0.18.4".into()),
                diffusers: Some("0.35.1".into()),
                transformers: Some("4.56.0".into()),
                peft: Some("0.17.1".into()),
                flash_attn: Some("2.8.3".into()),
                ..Packages::default()
            },
            torch: Some(TorchInfo {
                imported: true,
                version: Some("2.9.0+cu128".into()),
                cuda: Some("12.8".into()),
                cuda_available: true,
                device_count: 2,
                devices: vec![
                    TorchDevice {
                        name: "NVIDIA GeForce RTX 4090".into(),
                        capability: Some((8, 9)),
                    };
                    2
                ],
                arch_list: ["sm_80", "sm_86", "sm_90", "sm_120"]
                    .map(String::from)
                    .to_vec(),
                import_error: None,
                cuda_error: None,
            }),
            errors: vec![],
        }
    }

    fn good_checkout() -> CheckoutState {
        CheckoutState {
            dir: PathBuf::from("/dp"),
            exists: true,
            is_diffusion_pipe: true,
            head: Some(HEAD.into()),
            head_ref: Some("refs/heads/main".into()),
            head_error: None,
            matches_pin: Some(true),
            submodules: pin::pin()
                .submodules
                .iter()
                .map(|p| Submodule {
                    path: p.clone(),
                    initialised: true,
                })
                .collect(),
            submodules_source: SubmodulesSource::Gitmodules,
            venv: Some(PathBuf::from("/dp/venv")),
        }
    }

    struct Case {
        python: PythonChoice,
        probe: Option<ProbeResult>,
        checkout: CheckoutState,
        gpus: Option<Vec<String>>,
        hostfile: bool,
        nccl: (Option<String>, Option<String>),
    }

    impl Case {
        fn good() -> Case {
            Case {
                python: found(),
                probe: Some(ProbeResult::Ok(good_report())),
                checkout: good_checkout(),
                gpus: Some(vec!["NVIDIA GeForce RTX 4090".into(); 2]),
                hostfile: false,
                nccl: (Some("1".into()), Some("1".into())),
            }
        }
        fn report(&mut self) -> &mut ProbeReport {
            match self.probe.as_mut() {
                Some(ProbeResult::Ok(r)) => r,
                _ => panic!("no report"),
            }
        }
        fn torch(&mut self) -> &mut TorchInfo {
            self.report().torch.as_mut().unwrap()
        }
        fn run(&self) -> Vec<Check> {
            evaluate(&CheckInputs {
                python: &self.python,
                probe: self.probe.as_ref(),
                checkout_dir: Path::new("/dp"),
                checkout: &self.checkout,
                gpu_names: self.gpus.as_deref(),
                hostfile_exists: self.hostfile,
                nccl_env: self.nccl.clone(),
            })
        }
    }

    fn get<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks
            .iter()
            .find(|c| c.id == id)
            .unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
    }

    fn status(c: &Case, id: &str) -> Status {
        get(&c.run(), id).status.clone()
    }

    #[test]
    fn all_good_passes_in_stable_order() {
        let checks = Case::good().run();
        let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, CHECK_IDS);
        for c in &checks {
            assert_eq!(c.status, Status::Pass, "{c:?}");
            assert_eq!(c.fix, None, "{c:?}");
        }
        assert_eq!(worst(&checks), Status::Pass);
        assert!(!any_failed(&checks));
    }

    #[test]
    fn python_not_found() {
        let mut c = Case::good();
        c.python = PythonChoice {
            path: None,
            source: PythonSource::Configured,
            note: Some("configured python /x does not exist".into()),
        };
        c.probe = None;
        let checks = c.run();
        let f = get(&checks, "python.found");
        assert_eq!(f.status, Status::Fail);
        assert!(f.detail.contains("/x does not exist"));
        assert!(f.fix.as_ref().unwrap().contains("--python /path/to/venv"));
        assert!(f.fix.as_ref().unwrap().contains("DPGUI_PYTHON"));
        assert!(checks.iter().all(|c| c.id != "torch.installed"));
        assert!(any_failed(&checks));
    }

    #[test]
    fn probe_pending_and_failed() {
        let mut c = Case::good();
        c.probe = None;
        let checks = c.run();
        for id in [
            "python.probe",
            "python.version",
            "torch.installed",
            "deepspeed.version",
        ] {
            assert_eq!(get(&checks, id).status, Status::Pending, "{id}");
        }
        assert_eq!(worst(&checks), Status::Pending);
        assert!(!any_failed(&checks));

        c.probe = Some(ProbeResult::Failed {
            reason: "python probe timed out after 30s (importing torch...)".into(),
        });
        let checks = c.run();
        let p = get(&checks, "python.probe");
        assert_eq!(p.status, Status::Fail);
        assert!(p.detail.contains("timed out"));
        assert!(p.fix.as_ref().unwrap().contains("retry"));
        assert!(checks.iter().all(|c| c.id != "python.version"));
    }

    #[test]
    fn python_version_too_old() {
        let mut c = Case::good();
        c.report().python.minor = 11;
        let v = get(&c.run(), "python.version").clone();
        assert_eq!(v.status, Status::Fail);
        assert!(v.detail.contains("3.11.3"), "{}", v.detail);
        assert!(v.detail.contains("sqlite3.connect(autocommit=...)"));
        assert!(v.fix.unwrap().contains("python3.12 -m venv /dp/venv"));
    }

    #[test]
    fn torch_missing_or_broken() {
        let mut c = Case::good();
        c.report().torch = None;
        c.report().packages.torch = None;
        let checks = c.run();
        let t = get(&checks, "torch.installed");
        assert_eq!(t.status, Status::Fail);
        assert_eq!(
            t.fix.as_deref(),
            Some(
                "/dp/venv/bin/python -m pip install torch --index-url \
                 https://download.pytorch.org/whl/cu128"
            )
        );
        assert!(checks.iter().all(|c| c.id != "torch.cuda_build"));

        let mut c = Case::good();
        *c.torch() = TorchInfo {
            imported: false,
            import_error: Some("OSError: libcudart.so.12: cannot open".into()),
            ..TorchInfo::default()
        };
        let t = get(&c.run(), "torch.installed").clone();
        assert_eq!(t.status, Status::Fail);
        assert!(t.detail.contains("libcudart"));
        assert!(t.fix.unwrap().contains("--force-reinstall torch"));
    }

    #[test]
    fn cpu_only_torch_build() {
        let mut c = Case::good();
        let t = c.torch();
        t.cuda = None;
        t.cuda_available = false;
        t.device_count = 0;
        t.devices.clear();
        let checks = c.run();
        assert_eq!(get(&checks, "torch.cuda_build").status, Status::Fail);
        let d = get(&checks, "cuda.devices");
        assert_eq!(d.status, Status::Fail);
        assert!(d.detail.contains("NVML sees 2 GPU(s) but torch sees none"));
        assert!(d.fix.as_ref().unwrap().contains("cu128"));

        c.gpus = None;
        let checks = c.run();
        assert_eq!(get(&checks, "torch.cuda_build").status, Status::Warn);
        let d = get(&checks, "cuda.devices");
        assert_eq!(d.status, Status::Warn);
        assert!(d.detail.contains("NVML unavailable"));
    }

    #[test]
    fn cuda_devices_cases() {
        let mut c = Case::good();
        let d = get(&c.run(), "cuda.devices").clone();
        assert!(d.detail.contains("torch sees 2 GPU(s)"), "{}", d.detail);

        // CUDA build, but torch cannot see the GPUs NVML sees.
        c.torch().cuda_available = false;
        c.torch().cuda_error = Some("RuntimeError: driver too old".into());
        let d = get(&c.run(), "cuda.devices").clone();
        assert_eq!(d.status, Status::Fail);
        assert!(d.detail.contains("driver too old"));

        // No GPU at all.
        c.gpus = Some(vec![]);
        c.torch().cuda_error = None;
        let d = get(&c.run(), "cuda.devices").clone();
        assert_eq!(d.status, Status::Warn);
        assert!(d.detail.contains("no NVIDIA GPU found"));

        // A Blackwell card with a build that only has kernels up to sm_90.
        let mut c = Case::good();
        c.torch().arch_list = ["sm_80", "sm_86", "sm_90"].map(String::from).to_vec();
        c.torch().devices[1] = TorchDevice {
            name: "NVIDIA GeForce RTX 5090".into(),
            capability: Some((12, 0)),
        };
        let d = get(&c.run(), "cuda.devices").clone();
        assert_eq!(d.status, Status::Fail);
        assert!(d.detail.contains("RTX 5090 (sm_120)"), "{}", d.detail);
        assert!(!d.detail.contains("4090 (sm"), "{}", d.detail);
    }

    #[test]
    fn arch_compatibility() {
        let l = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(arch_supported(&l(&["sm_80", "sm_86"]), (8, 9)));
        assert!(!arch_supported(&l(&["sm_80", "sm_90"]), (12, 0)));
        assert!(arch_supported(&l(&["sm_90a", "sm_120"]), (12, 0)));
        assert!(arch_supported(&l(&["sm_80", "compute_90"]), (12, 0)));
        assert!(!arch_supported(&l(&["sm_90"]), (8, 9)));
        assert!(!arch_supported(&l(&["compute_90"]), (8, 9)));
        assert!(arch_supported(&[], (12, 0)));
    }

    #[test]
    fn deepspeed_versions() {
        let mut c = Case::good();
        c.report().packages.deepspeed = Some("0.17.1".into());
        let d = get(&c.run(), "deepspeed.version").clone();
        assert_eq!(d.status, Status::Warn);
        assert!(d.detail.contains("0.17.1") && d.detail.contains("0.18.4"));
        assert_eq!(
            d.fix.as_deref(),
            Some("/dp/venv/bin/python -m pip install deepspeed==0.18.4")
        );
        c.report().packages.deepspeed = None;
        assert_eq!(status(&c, "deepspeed.version"), Status::Fail);
    }

    #[test]
    fn requirements_and_flash_attn() {
        let mut c = Case::good();
        c.report().packages.peft = None;
        c.report().packages.diffusers = None;
        let r = get(&c.run(), "python.requirements").clone();
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.detail, "not installed: diffusers, peft");
        assert_eq!(
            r.fix.as_deref(),
            Some("/dp/venv/bin/python -m pip install -r /dp/requirements.txt")
        );
        c.report().packages.flash_attn = None;
        let f = get(&c.run(), "flash_attn").clone();
        assert_eq!(f.status, Status::Info);
        assert!(f.detail.contains("wan") && f.detail.contains("hunyuan_image"));
    }

    #[test]
    fn checkout_missing_or_foreign() {
        let mut c = Case::good();
        c.checkout.exists = false;
        c.checkout.is_diffusion_pipe = false;
        let checks = c.run();
        let p = get(&checks, "checkout.present");
        assert_eq!(p.status, Status::Fail);
        assert_eq!(
            p.fix.as_deref(),
            Some("git clone --recurse-submodules https://github.com/tdrussell/diffusion-pipe /dp")
        );
        assert!(checks.iter().all(|c| c.id != "checkout.commit"));

        let mut c = Case::good();
        c.checkout.is_diffusion_pipe = false;
        let p = get(&c.run(), "checkout.present").clone();
        assert_eq!(p.status, Status::Fail);
        assert!(p.detail.contains("no train.py"));
    }

    #[test]
    fn checkout_commit_differs_or_unknown() {
        let mut c = Case::good();
        c.checkout.head = Some("0123456789abcdef0123456789abcdef01234567".into());
        c.checkout.matches_pin = Some(false);
        let k = get(&c.run(), "checkout.commit").clone();
        assert_eq!(k.status, Status::Warn);
        assert!(k.detail.contains("0123456 (main)"), "{}", k.detail);
        assert!(k.detail.contains("8f83dbf"));
        assert!(k.fix.unwrap().contains("git -C /dp checkout 8f83dbf"));

        c.checkout.head = None;
        c.checkout.matches_pin = None;
        c.checkout.head_error = Some("/dp is not a git checkout (no .git)".into());
        let k = get(&c.run(), "checkout.commit").clone();
        assert_eq!(k.status, Status::Warn);
        assert!(k.detail.contains("no .git"));
    }

    #[test]
    fn submodules_missing() {
        let mut c = Case::good();
        c.checkout.submodules[3].initialised = false;
        let s = get(&c.run(), "checkout.submodules").clone();
        assert_eq!(s.status, Status::Warn);
        assert!(s.detail.contains("submodules/Lumina_2"), "{}", s.detail);
        assert_eq!(
            s.fix.as_deref(),
            Some("git -C /dp submodule update --init --recursive")
        );
        c.checkout.submodules[0].initialised = false;
        let s = get(&c.run(), "checkout.submodules").clone();
        assert_eq!(s.status, Status::Fail);
        assert!(
            s.detail.starts_with("2 of 9 not initialised"),
            "{}",
            s.detail
        );
    }

    #[test]
    fn nccl_advice() {
        let mut c = Case::good();
        c.nccl = (Some("1".into()), None);
        let n = get(&c.run(), "nccl.consumer_gpus").clone();
        assert_eq!(n.status, Status::Warn);
        assert!(
            n.fix
                .unwrap()
                .contains("NCCL_P2P_DISABLE=1 NCCL_IB_DISABLE=1")
        );
        c.nccl = (Some("0".into()), Some("1".into()));
        assert_eq!(status(&c, "nccl.consumer_gpus"), Status::Warn);
        // one GPU: not needed
        c.gpus = Some(vec!["NVIDIA GeForce RTX 4090".into()]);
        assert_eq!(status(&c, "nccl.consumer_gpus"), Status::Info);
        // data-centre GPUs: not needed
        c.gpus = Some(vec!["NVIDIA H100 80GB HBM3".into(); 8]);
        assert_eq!(status(&c, "nccl.consumer_gpus"), Status::Info);
        c.gpus = None;
        assert_eq!(status(&c, "nccl.consumer_gpus"), Status::Info);
    }

    #[test]
    fn hostfile_warns() {
        let mut c = Case::good();
        c.hostfile = true;
        let h = get(&c.run(), "deepspeed.hostfile").clone();
        assert_eq!(h.status, Status::Warn);
        assert!(h.detail.contains("multi-node"));
        assert_eq!(h.fix.as_deref(), Some("mv /job/hostfile /job/hostfile.bak"));
    }

    #[test]
    fn consumer_gpu_names() {
        for yes in [
            "NVIDIA GeForce RTX 4090",
            "NVIDIA GeForce RTX 4090 D",
            "NVIDIA GeForce RTX 4060 Ti",
            "NVIDIA GeForce RTX 5090",
            "NVIDIA GeForce RTX 5070 Ti Laptop GPU",
        ] {
            assert!(is_consumer_gpu(yes), "{yes}");
        }
        for no in [
            "NVIDIA GeForce RTX 3090",
            "NVIDIA RTX 4000 Ada Generation",
            "NVIDIA RTX 5000 Ada Generation",
            "Quadro RTX 5000",
            "NVIDIA RTX PRO 6000 Blackwell Server Edition",
            "NVIDIA H100 80GB HBM3",
            "NVIDIA A100-SXM4-80GB",
            "",
        ] {
            assert!(!is_consumer_gpu(no), "{no}");
        }
    }

    #[test]
    fn worst_ordering() {
        let mk = |s: Status| check("x", "x", s, "", None);
        assert_eq!(worst(&[]), Status::Pass);
        assert_eq!(worst(&[mk(Status::Pass), mk(Status::Info)]), Status::Info);
        assert_eq!(
            worst(&[mk(Status::Warn), mk(Status::Pending), mk(Status::Info)]),
            Status::Warn
        );
        assert_eq!(
            worst(&[mk(Status::Warn), mk(Status::Fail), mk(Status::Pass)]),
            Status::Fail
        );
        assert!(any_failed(&[mk(Status::Pass), mk(Status::Fail)]));
        assert!(!any_failed(&[mk(Status::Warn), mk(Status::Pending)]));
    }

    #[test]
    fn quoting_paths_in_fixes() {
        assert_eq!(shell_quote("/a/b-c_d.e"), "/a/b-c_d.e");
        assert_eq!(shell_quote("/my dir/x"), "'/my dir/x'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        let mut c = Case::good();
        c.python.path = Some(PathBuf::from("/my env/bin/python"));
        c.report().packages.deepspeed = None;
        let d = get(&c.run(), "deepspeed.version").clone();
        assert!(d.fix.unwrap().starts_with("'/my env/bin/python' -m pip"));
    }

    #[test]
    fn status_serializes_lowercase() {
        assert_eq!(
            serde_json::to_string(&Status::Pending).unwrap(),
            "\"pending\""
        );
    }
}
