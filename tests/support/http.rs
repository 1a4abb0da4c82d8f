//! A real HTTP server on 127.0.0.1 for the tests that stand in for a web service (a
//! WebSub hub, Buttondown's API): the test's axum router, served on a free port from a
//! thread of its own until the test process ends.

/// Serves `app`; returns its port.
pub fn serve(app: axum::Router) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            axum::serve(tokio::net::TcpListener::from_std(listener).unwrap(), app).await.unwrap();
        });
    });
    port
}
