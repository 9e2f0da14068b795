//! The GPU sampler thread driven by scripted fake backends: forced refreshes, published
//! snapshots and history, and shutdown when the receivers go away. No sleeps as
//! synchronisation: every wait is on a channel, bounded by a timeout so a bug fails instead of
//! hanging.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dpgui::system::gpu::{
    GpuBackend, GpuFeed, GpuInfo, GpuSnapshot, SamplerHandle, fake_gpus, spawn_sampler,
};
use tokio::sync::watch;

/// Long enough that only the first sample and forced refreshes happen during a test.
const NEVER: Duration = Duration::from_secs(3600);
const LIMIT: Duration = Duration::from_secs(10);

/// Returns the scripted snapshots in order, then repeats the last one; counts its samples.
struct ScriptBackend {
    script: Arc<Mutex<Vec<GpuSnapshot>>>,
    calls: Arc<Mutex<u64>>,
}

impl GpuBackend for ScriptBackend {
    fn sample(&mut self) -> GpuSnapshot {
        *self.calls.lock().unwrap() += 1;
        let mut script = self.script.lock().unwrap();
        if script.len() > 1 {
            script.remove(0)
        } else {
            script.first().cloned().unwrap_or_default()
        }
    }
}

fn one_gpu(util: Option<u32>, used: u64, total: u64) -> GpuSnapshot {
    let mut s = fake_gpus(1);
    s.gpus[0] = GpuInfo {
        utilization_pct: util,
        memory_used_bytes: Some(used),
        memory_total_bytes: Some(total),
        ..s.gpus[0].clone()
    };
    s
}

async fn next(rx: &mut watch::Receiver<GpuFeed>) -> GpuFeed {
    tokio::time::timeout(LIMIT, rx.changed())
        .await
        .expect("no sample published in time")
        .expect("sampler thread ended");
    rx.borrow_and_update().clone()
}

/// Joins the sampler thread off the runtime's threads (so the runtime can run the task that
/// notices dropped receivers), asserting it ends in time and without a panic.
async fn assert_ends(mut handle: SamplerHandle) {
    let joined = tokio::task::spawn_blocking(move || {
        let r = handle.join_timeout(LIMIT);
        (r, handle.is_finished())
    })
    .await
    .unwrap();
    match joined {
        (Some(Ok(())), true) => {}
        (Some(Err(_)), _) => panic!("sampler thread panicked"),
        (None, _) => panic!("sampler thread still running after {LIMIT:?}"),
        (Some(Ok(())), false) => panic!("joined but not finished"),
    }
}

#[tokio::test]
async fn publishes_samples_on_refresh_with_history_and_ends_when_receiver_dropped() {
    let script = vec![
        one_gpu(Some(10), 10, 100),
        one_gpu(None, 20, 100), // utilization missing: skipped in history, not 0
        one_gpu(Some(30), 30, 100),
        one_gpu(Some(40), 40, 100),
        fake_gpus(8),
    ];
    let calls = Arc::new(Mutex::new(0));
    let backend = ScriptBackend {
        script: Arc::new(Mutex::new(script.clone())),
        calls: calls.clone(),
    };
    let (mut rx, handle) = spawn_sampler(Box::new(backend), NEVER, 3);
    assert!(!handle.is_finished());

    // The first sample is taken at once, without asking.
    let feed = next(&mut rx).await;
    assert_eq!(feed.samples, 1);
    assert_eq!(feed.snapshot.as_ref(), Some(&script[0]));
    assert_eq!(feed.history.utilization(0), vec![10]);
    assert_eq!(feed.history.memory(0), vec![10]);

    // Each forced refresh is served at once, despite the hour-long interval.
    assert!(handle.refresh_now());
    let feed = next(&mut rx).await;
    assert_eq!(feed.samples, 2);
    assert_eq!(feed.snapshot.as_ref(), Some(&script[1]));
    assert_eq!(feed.history.utilization(0), vec![10]);
    assert_eq!(feed.history.memory(0), vec![10, 20]);

    assert!(handle.refresh_now());
    next(&mut rx).await;
    assert!(handle.refresh_now());
    let feed = next(&mut rx).await;
    assert_eq!(feed.samples, 4);
    assert_eq!(feed.snapshot.as_ref(), Some(&script[3]));
    // Capacity 3: the oldest memory value has fallen out.
    assert_eq!(feed.history.utilization(0), vec![10, 30, 40]);
    assert_eq!(feed.history.memory(0), vec![20, 30, 40]);
    assert_eq!(feed.history.capacity(), 3);

    assert!(handle.refresh_now());
    let feed = next(&mut rx).await;
    assert_eq!(feed.samples, 5);
    assert_eq!(feed.snapshot.as_ref(), Some(&script[4]));
    assert_eq!(feed.snapshot.as_ref().unwrap().gpus.len(), 8);
    assert_eq!(feed.history.utilization(7).len(), 1);
    assert!(feed.history.utilization(1).is_empty()); // fake GPU 1 has no utilization
    assert_eq!(*calls.lock().unwrap(), 5);

    // No receiver left: the thread notices without a refresh and without waiting an hour.
    drop(rx);
    assert_ends(handle).await;
    assert_eq!(
        *calls.lock().unwrap(),
        5,
        "no sample after the receiver went away"
    );
}

#[tokio::test]
async fn a_cloned_receiver_keeps_the_sampler_alive() {
    let backend = ScriptBackend {
        script: Arc::new(Mutex::new(vec![fake_gpus(2)])),
        calls: Arc::new(Mutex::new(0)),
    };
    let (mut rx, handle) = spawn_sampler(Box::new(backend), NEVER, 10);
    next(&mut rx).await;
    // A clone made now has seen what `rx` has seen: its next change is the next sample.
    let mut other = rx.clone();
    drop(rx);
    assert!(handle.refresh_now());
    let feed = next(&mut other).await;
    assert_eq!(feed.samples, 2);
    assert_eq!(feed.snapshot, Some(fake_gpus(2)));
    drop(other);
    assert_ends(handle).await;
}

#[tokio::test]
async fn stop_ends_the_thread_while_receivers_live() {
    let backend = ScriptBackend {
        script: Arc::new(Mutex::new(vec![fake_gpus(0)])),
        calls: Arc::new(Mutex::new(0)),
    };
    let (mut rx, handle) = spawn_sampler(Box::new(backend), NEVER, 10);
    let feed = next(&mut rx).await;
    assert_eq!(feed.snapshot, Some(fake_gpus(0)));
    handle.stop();
    // The sender goes away with the thread: changed() reports it instead of waiting forever.
    let changed = tokio::time::timeout(LIMIT, rx.changed()).await.unwrap();
    assert!(changed.is_err());
    assert!(!handle.refresh_now());
    assert_ends(handle).await;
}

#[test]
fn outside_a_runtime_the_thread_ends_at_its_next_wake_up() {
    let calls = Arc::new(Mutex::new(0));
    let backend = ScriptBackend {
        script: Arc::new(Mutex::new(vec![fake_gpus(1)])),
        calls: calls.clone(),
    };
    let (mut rx, mut handle) = spawn_sampler(Box::new(backend), NEVER, 10);
    futures::executor::block_on(async {
        let feed = next_blocking(&mut rx).await;
        assert_eq!(feed.samples, 1);
    });
    drop(rx);
    // Without a runtime nothing watches the receivers; a refresh wakes the thread, which sees
    // that nobody listens and ends without sampling.
    handle.refresh_now();
    assert!(matches!(handle.join_timeout(LIMIT), Some(Ok(()))));
    assert!(handle.is_finished());
    assert_eq!(*calls.lock().unwrap(), 1);
}

/// `next` without tokio's timer (no runtime here).
async fn next_blocking(rx: &mut watch::Receiver<GpuFeed>) -> GpuFeed {
    rx.changed().await.expect("sampler thread ended");
    rx.borrow_and_update().clone()
}

struct PanickingBackend;

impl GpuBackend for PanickingBackend {
    fn sample(&mut self) -> GpuSnapshot {
        panic!("backend exploded");
    }
}

#[tokio::test]
async fn a_panicking_backend_closes_the_feed_and_the_join_reports_it() {
    let (mut rx, mut handle) = spawn_sampler(Box::new(PanickingBackend), NEVER, 10);
    let changed = tokio::time::timeout(LIMIT, rx.changed()).await.unwrap();
    assert!(changed.is_err(), "the feed must close, not stay silent");
    assert!(rx.borrow().snapshot.is_none());
    let joined = tokio::task::spawn_blocking(move || handle.join_timeout(LIMIT))
        .await
        .unwrap();
    assert!(matches!(joined, Some(Err(_))));
}
