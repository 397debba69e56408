//! The rows that are not closed-loop load: watches, session creation, failover.

use crate::load::{connect_all, ensure, DATA_LEN};
use crate::stats::Outcome;
use crate::target::{kill9, Target};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zookeeper_client::{Client, Error};

/// Latency from a set to each of `watchers` sessions' notification, over `rounds` sets.
pub async fn watch_latency(t: &Target, watchers: usize, rounds: usize) -> Result<Outcome, Error> {
    let clients = connect_all(t, watchers).await?;
    let writer = Client::connect(t.server(0)).await?;
    let path = "/bench-watch";
    ensure(&writer, path).await?;
    // Another session's server may not have applied the create yet: each syncs first.
    for c in &clients {
        c.sync(path).await?;
    }
    let mut latencies = Vec::with_capacity(watchers * rounds);
    let cpu0 = t.cpu_seconds();
    let start = Instant::now();
    for _ in 0..rounds {
        let mut armed = Vec::with_capacity(watchers);
        for c in &clients {
            let (_, _, w) = c.get_and_watch_data(path).await?;
            armed.push(w);
        }
        let t0 = Instant::now();
        let waits: Vec<_> = armed
            .into_iter()
            .map(|w| {
                tokio::spawn(async move {
                    w.changed().await;
                    t0.elapsed().as_micros() as u64
                })
            })
            .collect();
        writer.set_data(path, &[1u8; DATA_LEN], None).await?;
        for w in waits {
            if let Ok(us) = w.await {
                latencies.push(us);
            }
        }
    }
    Ok(Outcome::new(
        latencies,
        0,
        start.elapsed(),
        t.cpu_seconds() - cpu0,
    ))
}

/// Sessions opened (and closed) per second by `parallel` loops over `duration`; the latency is
/// that of one connect.
pub async fn session_rate(t: &Target, parallel: usize, duration: Duration) -> Outcome {
    let errors = Arc::new(AtomicU64::new(0));
    let cpu0 = t.cpu_seconds();
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..parallel)
        .map(|i| {
            let (addr, errors) = (t.server(i).to_owned(), errors.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t0 = Instant::now();
                    match Client::connect(&addr).await {
                        Ok(c) => {
                            lat.push(t0.elapsed().as_micros() as u64);
                            drop(c);
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lat
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap_or_default());
    }
    Outcome::new(
        latencies,
        errors.load(Ordering::Relaxed),
        start.elapsed(),
        t.cpu_seconds() - cpu0,
    )
}

/// Kills the leader under a steady write load from `writers` sessions (each may use every
/// server) and returns the longest time without a completed write after the kill, in ms.
pub async fn write_gap(t: &Target, writers: usize) -> Result<f64, String> {
    let leader = t.leader().ok_or("no leader")?;
    let mut clients = Vec::new();
    for _ in 0..writers {
        clients.push(
            Client::connect(&t.connect_string())
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let path = "/bench-gap";
    ensure(&clients[0], path).await.map_err(|e| e.to_string())?;
    let done: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let kill_at = Instant::now() + Duration::from_secs(2);
    let deadline = kill_at + Duration::from_secs(15);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = tokio::time::timeout(
                        Duration::from_secs(1),
                        c.set_data(path, &[3u8; DATA_LEN], None),
                    );
                    if let Ok(Ok(_)) = r.await {
                        done.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Instant::now());
                    } else {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(kill_at.into()).await;
    kill9(t.pids[leader])?;
    for task in tasks {
        let _ = task.await;
    }
    let mut times = done.lock().unwrap_or_else(|p| p.into_inner()).clone();
    times.sort();
    // The longest stall between two completed writes once the leader is gone (a few writes
    // already committed may still be answered right after the kill).
    let gap = times
        .windows(2)
        .filter(|w| w[1] > kill_at)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .ok_or("no write completed after the kill")?;
    Ok(gap.as_secs_f64() * 1000.0)
}

/// Connects `n` sessions (each may use every server), kills the leader, and returns the time
/// in milliseconds until every session has completed a `sync` (which needs a leader) again.
pub async fn reconnect_all(t: &Target, n: usize) -> Result<f64, String> {
    let leader = t.leader().ok_or("no leader")?;
    let connect = t.connect_string();
    let mut clients = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let opened: Vec<_> = chunk
            .iter()
            .map(|_| {
                let connect = connect.clone();
                tokio::spawn(async move {
                    let mut b = Client::connector();
                    b.session_timeout(Duration::from_secs(30));
                    b.connect(&connect).await
                })
            })
            .collect();
        for o in opened {
            clients.push(
                o.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?,
            );
        }
    }
    let killed = Instant::now();
    kill9(t.pids[leader])?;
    let deadline = killed + Duration::from_secs(120);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = tokio::time::timeout(Duration::from_secs(2), c.sync("/")).await;
                    if let Ok(Ok(())) = r {
                        return Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                None
            })
        })
        .collect();
    let mut last = killed;
    for task in tasks {
        match task.await {
            Ok(Some(at)) => last = last.max(at),
            _ => return Err("a session did not come back within 120 s".into()),
        }
    }
    Ok(last.duration_since(killed).as_secs_f64() * 1000.0)
}
