//! Calls run on one single-threaded runtime per core, each with its own I/O driver: a call's
//! two sockets, its timer and its task all live on one thread. Frames are handled where they
//! are read, and a busy thread never wakes a sibling to share work (the multi-threaded
//! scheduler did, per frame: half the bridge's kernel time was threads parking and waking).
//! The main runtime keeps the accept loop and everything shared (Redis, Telnyx's REST client,
//! telemetry).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct IoThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping these ends the threads (their runtimes drop what still runs).
    _stops: Vec<oneshot::Sender<()>>,
}

impl IoThreads {
    /// One thread per CPU this process may use (its affinity mask and cgroup quota).
    pub fn start() -> std::io::Result<IoThreads> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (mut handles, mut stops) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            std::thread::Builder::new()
                .name(format!("bridge-io-{i}"))
                .spawn(move || {
                    let _ = rt.block_on(stopped);
                })?;
        }
        Ok(IoThreads {
            handles,
            next: AtomicUsize::new(0),
            _stops: stops,
        })
    }

    /// Runs `fut` on the next thread in turn. A TCP stream must be registered on that thread's
    /// driver (`TcpStream::from_std` inside `fut`), or its readiness would come from elsewhere.
    pub fn spawn<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(fut)
    }
}
