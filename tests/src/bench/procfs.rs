//! What `/proc` says about a process the benchmarks started: CPU time spent, resident memory, and
//! the processes it started in turn.
//!
//! CPU time comes from two sources. `/proc/PID/task/*/schedstat` gives each thread's time on a CPU in
//! nanoseconds, but forgets a thread once it has exited; `utime + stime` in `/proc/PID/stat` covers
//! the whole process, exited threads included, but only in clock ticks (10 ms at the usual
//! `CLK_TCK` of 100). A delta takes the nanoseconds when both agree to within two ticks, the ticks
//! otherwise (a thread ended during the run).

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// One reading of a process's CPU time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSample {
    /// `utime + stime` of the whole process, in nanoseconds (a multiple of the clock tick).
    pub ticks_ns: u64,
    /// Nanoseconds on a CPU per live thread id.
    pub threads_ns: BTreeMap<u32, u64>,
}

impl CpuSample {
    /// Reads process `pid` now (an empty sample when it is gone).
    pub fn read(pid: u32) -> CpuSample {
        let ticks_ns = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| cpu_ticks(&stat))
            .map_or(0, |ticks| ticks * tick_ns());
        let mut threads_ns = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                if let Some(ns) = std::fs::read_to_string(task.path().join("schedstat"))
                    .ok()
                    .and_then(|s| schedstat_ns(&s))
                {
                    threads_ns.insert(tid, ns);
                }
            }
        }
        CpuSample {
            ticks_ns,
            threads_ns,
        }
    }

    /// CPU time spent between `self` and a later sample `after`, in nanoseconds.
    pub fn spent_until(&self, after: &CpuSample) -> u64 {
        let coarse = after.ticks_ns.saturating_sub(self.ticks_ns);
        let a_thread_ended = self
            .threads_ns
            .keys()
            .any(|tid| !after.threads_ns.contains_key(tid));
        let precise: u64 = after
            .threads_ns
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(self.threads_ns.get(tid).copied().unwrap_or(0)))
            .sum();
        let tolerance = 2 * tick_ns();
        if a_thread_ended || precise.abs_diff(coarse) > tolerance {
            coarse
        } else {
            precise
        }
    }
}

/// The CPU readings of a group of processes (a server and the workers it forked), taken together.
#[derive(Clone, Debug, Default)]
pub struct GroupCpu {
    samples: BTreeMap<u32, CpuSample>,
}

impl GroupCpu {
    /// Reads every process in `pids`.
    pub fn read(pids: &[u32]) -> GroupCpu {
        GroupCpu {
            samples: pids
                .iter()
                .map(|&pid| (pid, CpuSample::read(pid)))
                .collect(),
        }
    }

    /// Nanoseconds spent by the group between `self` and `after`; a process that appeared in
    /// between counts from zero.
    pub fn spent_until(&self, after: &GroupCpu) -> u64 {
        after
            .samples
            .iter()
            .map(|(pid, later)| {
                self.samples
                    .get(pid)
                    .cloned()
                    .unwrap_or_default()
                    .spent_until(later)
            })
            .sum()
    }
}

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; after the name, field 3 (the state) is index 0.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The parent process id (field 4) from the text of `/proc/PID/stat`.
pub fn parent_pid(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Time on a CPU in nanoseconds from the text of `/proc/PID/schedstat` (its first field).
pub fn schedstat_ns(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().next()?.parse().ok()
}

/// Nanoseconds per clock tick (`getconf CLK_TCK`, 100 when it cannot be asked).
pub fn tick_ns() -> u64 {
    static TICK_NS: OnceLock<u64> = OnceLock::new();
    *TICK_NS.get_or_init(|| {
        let per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(100);
        1_000_000_000 / per_second
    })
}

/// `pid` and every live process below it.
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
                continue;
            };
            if let Some(parent) = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| parent_pid(&stat))
            {
                parents.push((child, parent));
            }
        }
    }
    descendants(pid, &parents)
}

/// `root` and the processes below it, given `(pid, parent pid)` pairs.
pub fn descendants(root: u32, parents: &[(u32, u32)]) -> Vec<u32> {
    let mut tree = vec![root];
    let mut at = 0;
    while at < tree.len() {
        let parent = tree[at];
        tree.extend(
            parents
                .iter()
                .filter(|&&(child, p)| p == parent && child != parent)
                .map(|&(child, _)| child),
        );
        at += 1;
    }
    tree
}

/// A `kB` line of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB; 0 when unreadable.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| status_field_kib(&status, field))
        .unwrap_or(0)
}

/// The value of `field` (e.g. `VmRSS`) in the text of `/proc/PID/status`, in KiB.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
}

/// Resident memory of a process now, in KiB (0 when unreadable).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// The most resident memory a process has held since it started (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tokio (worker) 1) S 1 4242 4242 0 -1 4194560 1520 0 0 0 \
                        731 129 0 0 20 0 3 0 123456 1000000 2000 18446744073709551615";

    #[test]
    fn cpu_ticks_and_parent_are_read_after_a_name_with_spaces_and_parentheses() {
        assert_eq!(cpu_ticks(STAT), Some(731 + 129));
        assert_eq!(parent_pid(STAT), Some(1));
        assert_eq!(cpu_ticks("4242 (short) S 1"), None);
        assert_eq!(schedstat_ns("59869123 1200 17\n"), Some(59_869_123));
    }

    #[test]
    fn status_fields_are_read_by_their_exact_name() {
        let status = "Name:\tgw\nVmHWM:\t   40960 kB\nVmRSS:\t   14100 kB\n";
        assert_eq!(status_field_kib(status, "VmRSS"), Some(14_100));
        assert_eq!(status_field_kib(status, "VmHWM"), Some(40_960));
        assert_eq!(status_field_kib(status, "Vm"), None);
    }

    fn sample(ticks: u64, threads: &[(u32, u64)]) -> CpuSample {
        CpuSample {
            ticks_ns: ticks * tick_ns(),
            threads_ns: threads.iter().copied().collect(),
        }
    }

    #[test]
    fn cpu_spent_is_the_threads_nanoseconds_when_they_agree_with_the_ticks() {
        let ms = 1_000_000;
        let before = sample(100, &[(1, 600 * ms), (2, 400 * ms + 3)]);
        // 1.234 s spent, one thread new; the ticks (truncated) say 1.23 s.
        let after = sample(223, &[(1, 1_300 * ms), (2, 900 * ms + 3), (3, 34 * ms)]);
        assert_eq!(before.spent_until(&after), 1_234 * ms);
    }

    #[test]
    fn cpu_spent_falls_back_to_the_ticks_when_a_thread_ended() {
        let ms = 1_000_000;
        let before = sample(100, &[(1, 600 * ms), (2, 400 * ms)]);
        let ended = sample(150, &[(1, 700 * ms)]);
        assert_eq!(before.spent_until(&ended), 50 * tick_ns());
        // A thread that lived and died between the samples shows only in the ticks.
        let hidden = sample(190, &[(1, 700 * ms), (2, 400 * ms)]);
        assert_eq!(before.spent_until(&hidden), 90 * tick_ns());
    }

    #[test]
    fn a_group_adds_its_processes_and_counts_a_new_one_from_zero() {
        let ms = 1_000_000;
        let before = GroupCpu {
            samples: [(10, sample(0, &[(10, 0)]))].into_iter().collect(),
        };
        let after = GroupCpu {
            samples: [
                (10, sample(10, &[(10, 100 * ms)])),
                (11, sample(5, &[(11, 50 * ms)])),
            ]
            .into_iter()
            .collect(),
        };
        assert_eq!(before.spent_until(&after), 150 * ms);
    }

    #[test]
    fn descendants_are_found_at_every_depth_and_nothing_else() {
        let parents = [(2, 1), (3, 2), (4, 3), (5, 1), (6, 9), (1, 0)];
        let mut tree = descendants(2, &parents);
        tree.sort();
        assert_eq!(tree, vec![2, 3, 4]);
    }

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        let before = CpuSample::read(pid);
        let after = CpuSample::read(pid);
        assert!(!after.threads_ns.is_empty());
        assert!(after.ticks_ns >= before.ticks_ns);
        assert!(rss_kib(pid) > 0);
        assert!(peak_rss_kib(pid) >= rss_kib(pid));
        assert!(process_tree(pid).contains(&pid));
    }
}
