//! CPU time of the three processes a drain exercises, from `/proc`: the worker, the
//! Redis server (its `process_id` from `INFO server`) and every PostgreSQL process
//! (`comm` = `postgres`: backends and background writers alike), and the bench
//! itself, which shares the machine's cores with them. A sample before and after a
//! run gives each one's CPU per event.

use std::path::Path;

/// Clock ticks of user and system time, per process group; and the machine's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub worker: u64,
    pub redis: u64,
    pub postgres: u64,
    /// This process: the producer and the outputs' reader of a latency run.
    pub bench: u64,
    pub machine: Machine,
}

/// The machine's clock ticks (`cpu` line of `/proc/stat`): all, idle (with iowait)
/// and stolen by the hypervisor, so a run on a busy host shows as one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    pub total: u64,
    pub idle: u64,
    pub steal: u64,
}

/// The `cpu ` line of `/proc/stat`: user nice system idle iowait irq softirq steal.
fn machine(stat: &str) -> Option<Machine> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values[..] else {
        return None;
    };
    Some(Machine {
        total: user + nice + system + idle + iowait + irq + softirq + steal,
        idle: idle + iowait,
        steal,
    })
}

/// utime + stime of `/proc/<pid>/stat`, in clock ticks.
fn ticks(stat: &str) -> Option<u64> {
    // The command name is in parentheses and may hold spaces: fields after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `comm`: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn of_pid(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| ticks(&s))
        .unwrap_or(0)
}

/// Every process whose `comm` is `postgres`.
fn postgres() -> u64 {
    let Ok(dir) = std::fs::read_dir(Path::new("/proc")) else {
        return 0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| s.contains("(postgres)"))
        .filter_map(|s| ticks(&s))
        .sum()
}

/// CPU so far of the workers (summed), the Redis server and PostgreSQL.
pub fn sample(workers: &[Option<u32>], redis: Option<u32>) -> Sample {
    Sample {
        worker: workers.iter().flatten().copied().map(of_pid).sum(),
        redis: redis.map_or(0, of_pid),
        postgres: postgres(),
        bench: of_pid(std::process::id()),
        machine: std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| machine(&s))
            .unwrap_or_default(),
    }
}

/// The Redis server's pid, if it runs on this machine.
pub async fn redis_pid(conn: &mut redis::aio::MultiplexedConnection) -> Option<u32> {
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(conn)
        .await
        .ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// CPU per event of each process group, and the machine's idle and stolen share.
#[derive(Debug, Clone, Copy)]
pub struct PerEvent {
    /// All workers together.
    pub worker_us: f64,
    pub redis_us: f64,
    pub postgres_us: f64,
    pub bench_us: f64,
    pub idle_percent: f64,
    pub stolen_percent: f64,
}

/// "worker X µs, Redis Y µs, PostgreSQL Z µs (total T µs), the bench B µs" of CPU
/// per event.
impl std::fmt::Display for PerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CPU per event: worker {:.1} µs, Redis {:.1} µs, PostgreSQL {:.1} µs (total {:.1} µs), \
             the bench itself {:.1} µs; machine idle {:.0}%, stolen by the host {:.1}%",
            self.worker_us,
            self.redis_us,
            self.postgres_us,
            self.worker_us + self.redis_us + self.postgres_us,
            self.bench_us,
            self.idle_percent,
            self.stolen_percent,
        )
    }
}

pub fn per_event(before: Sample, after: Sample, events: usize) -> PerEvent {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)
        .unwrap_or(100) as f64;
    let us = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz * 1e6 / events.max(1) as f64;
    let (m0, m1) = (before.machine, after.machine);
    let total = m1.total.saturating_sub(m0.total).max(1) as f64;
    let share = |a: u64, b: u64| b.saturating_sub(a) as f64 * 100.0 / total;
    PerEvent {
        worker_us: us(before.worker, after.worker),
        redis_us: us(before.redis, after.redis),
        postgres_us: us(before.postgres, after.postgres),
        bench_us: us(before.bench, after.bench),
        idle_percent: share(m0.idle, m1.idle),
        stolen_percent: share(m0.steal, m1.steal),
    }
}

#[cfg(test)]
mod tests {
    use super::{machine, ticks};

    #[test]
    fn the_machine_line_gives_total_idle_and_steal() {
        let stat = "cpu  100 5 20 300 10 1 2 7 0 0\ncpu0 50 2 10 150 5 0 1 3 0 0\n";
        let m = machine(stat).expect("cpu line");
        assert_eq!((m.total, m.idle, m.steal), (445, 310, 7));
        assert!(machine("intr 1 2 3\n").is_none());
    }

    #[test]
    fn utime_and_stime_are_read_after_a_command_with_spaces() {
        let stat =
            "1234 (rules worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(ticks(stat), Some(300));
    }
}
