//! A fake btyd for btyctl's integration tests: the bty services with fixed
//! data on a Unix socket in a temp dir, and a runner for the real binary.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub(crate) mod fake;
pub(crate) mod fake_flash;
pub(crate) mod fake_jobs;

use bty_proto::v1::catalog_service_server::CatalogServiceServer;
use bty_proto::v1::flash_service_server::FlashServiceServer;
use bty_proto::v1::job_service_server::JobServiceServer;
use bty_proto::v1::{
    FetchImageRequest, FlashRequest, ImportCatalogRequest, PushImageRequest, UploadHeader,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;

/// What the fake daemon was asked, for tests that check the request.
#[derive(Debug, Default)]
pub(crate) struct Recorded {
    /// Every `ImportCatalog` request, in order.
    pub(crate) imports: Mutex<Vec<ImportCatalogRequest>>,
    /// Every `ListImages` query, in order.
    pub(crate) queries: Mutex<Vec<String>>,
    /// Every `FetchImage` request, in order.
    pub(crate) fetches: Mutex<Vec<FetchImageRequest>>,
    /// Every `DeleteCache` id, in order.
    pub(crate) cache_deletes: Mutex<Vec<String>>,
    /// Every `PushImage` request, in order.
    pub(crate) pushes: Mutex<Vec<PushImageRequest>>,
    /// Every completed `UploadImage` stream, in order.
    pub(crate) uploads: Mutex<Vec<Upload>>,
    /// How many times `ListDisks` was called.
    pub(crate) disk_listings: Mutex<usize>,
    /// Every `Flash` request, in order.
    pub(crate) flashes: Mutex<Vec<FlashRequest>>,
}

/// What the fake received in one upload stream.
#[derive(Debug)]
pub(crate) struct Upload {
    /// The first message (the fake rejects streams that start otherwise).
    pub(crate) header: UploadHeader,
    /// How many data messages followed.
    pub(crate) data_messages: usize,
    /// The largest data message, in bytes.
    pub(crate) largest_message: usize,
    /// Data bytes received.
    pub(crate) bytes: u64,
    /// sha256 (hex) of the data bytes.
    pub(crate) sha256: String,
}

/// A fake daemon serving on `socket` until dropped.
pub(crate) struct FakeDaemon {
    /// The Unix socket btyctl should use.
    pub(crate) socket: PathBuf,
    /// Requests the fake received.
    pub(crate) recorded: Arc<Recorded>,
    dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeDaemon {
    /// Bind a socket in a fresh temp dir and serve the fake services on it.
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("btyd.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("bind socket");
        let recorded = Arc::new(Recorded::default());
        let fake = fake::Fake {
            recorded: recorded.clone(),
        };
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(CatalogServiceServer::new(fake.clone()))
                .add_service(JobServiceServer::new(fake.clone()))
                .add_service(FlashServiceServer::new(fake))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await
                .expect("fake daemon serves");
        });
        Self {
            socket,
            recorded,
            dir,
            shutdown: Some(shutdown),
        }
    }

    /// The temp dir the socket lives in (for files a test wants to import).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run btyctl with `--socket <this daemon>` and `args`.
    pub(crate) async fn btyctl(&self, args: &[&str]) -> Run {
        let mut full = vec!["--socket", self.socket.to_str().expect("utf-8 path")];
        full.extend_from_slice(args);
        btyctl(&full, &[]).await
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The outcome of one btyctl run.
#[derive(Debug)]
pub(crate) struct Run {
    /// The exit code.
    pub(crate) code: i32,
    /// Everything printed on stdout.
    pub(crate) stdout: String,
    /// Everything printed on stderr.
    pub(crate) stderr: String,
}

impl Run {
    /// stdout parsed as exactly one JSON document.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not one JSON document ({err}): {self:?}"))
    }

    /// Assert the exit code, showing the whole run when it differs.
    pub(crate) fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        self
    }
}

/// Run the real btyctl binary with `args` and extra environment `env`,
/// without inheriting a `BTY_SOCKET` from the test's environment.
pub(crate) async fn btyctl(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_btyctl"))
        .args(args)
        .env_remove("BTY_SOCKET")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run btyctl");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

/// The sorted keys of a JSON object.
pub(crate) fn keys(value: &serde_json::Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .cloned()
        .collect();
    keys.sort_unstable();
    keys
}

/// `names` as sorted owned strings, to compare with [`keys`].
pub(crate) fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    names.sort_unstable();
    names
}
