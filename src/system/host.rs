//! The host at a glance (CPU, memory, load), for the header line, via sysinfo.

use serde::Serialize;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HostSummary {
    pub hostname: String,
    pub cpus: usize,
    /// Over the interval since the previous sample; None on the first one.
    pub cpu_pct: Option<f32>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub load1: f64,
}

/// Keeps the sysinfo state between samples (CPU usage is a difference of two readings).
#[derive(Default)]
pub struct HostSampler {
    sys: Option<sysinfo::System>,
    samples: u64,
}

impl HostSampler {
    pub fn sample(&mut self) -> HostSummary {
        let hostname = sysinfo::System::host_name().unwrap_or_default();
        let load1 = sysinfo::System::load_average()
            .map(|l| l.one)
            .unwrap_or(0.0);
        if self.sys.is_none() {
            self.sys = sysinfo::System::new().ok();
        }
        let Some(sys) = self.sys.as_mut() else {
            return HostSummary {
                hostname,
                load1,
                ..Default::default()
            };
        };
        sys.refresh_memory();
        sys.refresh_cpu_usage();
        self.samples += 1;
        HostSummary {
            hostname,
            cpus: sys.cpus().len(),
            cpu_pct: (self.samples > 1).then(|| sys.global_cpu_usage()),
            memory_used_bytes: sys.used_memory(),
            memory_total_bytes: sys.total_memory(),
            load1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_this_machine() {
        let mut h = HostSampler::default();
        let first = h.sample();
        assert!(first.memory_total_bytes > 0);
        assert!(first.memory_used_bytes <= first.memory_total_bytes);
        assert!(first.cpus >= 1);
        assert_eq!(first.cpu_pct, None);
        assert!(h.sample().cpu_pct.is_some());
    }
}
