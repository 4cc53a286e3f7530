//! CPU time of the three processes a drain exercises, from `/proc`: the worker, the
//! Redis server (its `process_id` from `INFO server`) and every PostgreSQL process
//! (`comm` = `postgres`: backends and background writers alike). A sample before and
//! after a drain gives each one's CPU per event.

use std::path::Path;

/// Clock ticks of user and system time, per process group.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub worker: u64,
    pub redis: u64,
    pub postgres: u64,
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

pub fn sample(worker: Option<u32>, redis: Option<u32>) -> Sample {
    Sample {
        worker: worker.map_or(0, of_pid),
        redis: redis.map_or(0, of_pid),
        postgres: postgres(),
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

/// "worker X µs, Redis Y µs, PostgreSQL Z µs (total T µs) of CPU per event".
pub fn per_event(before: Sample, after: Sample, events: usize) -> String {
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|hz| *hz > 0)
        .unwrap_or(100) as f64;
    let us = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / hz * 1e6 / events.max(1) as f64;
    let (w, r, p) = (
        us(before.worker, after.worker),
        us(before.redis, after.redis),
        us(before.postgres, after.postgres),
    );
    format!(
        "CPU per event: worker {w:.1} µs, Redis {r:.1} µs, PostgreSQL {p:.1} µs (total {:.1} µs)",
        w + r + p
    )
}

#[cfg(test)]
mod tests {
    use super::ticks;

    #[test]
    fn utime_and_stime_are_read_after_a_command_with_spaces() {
        let stat =
            "1234 (rules worker) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(ticks(stat), Some(300));
    }
}
