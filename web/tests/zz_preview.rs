#![allow(clippy::unwrap_used)]
mod support;
use support::*;

#[tokio::test]
#[ignore]
async fn preview() {
    let harness = Harness::start(sample_daemon()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:18080").await.unwrap();
    let router = harness.router.clone();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(240), bty_web::serve(listener, router, std::future::pending())).await;
}
