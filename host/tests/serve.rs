//! `wasikv serve`: real HTTP over loopback against the built `wasikv`
//! binary, serving the `http-kv` example and the `http-probe` component.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::served::{Served, client, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Waits until `predicate` holds of the metrics (polled), or fails.
async fn wait_for_metrics(served: &Served, what: &str, predicate: impl Fn(&Metrics) -> bool) {
    let started = Instant::now();
    loop {
        let metrics = scrape(served).await;
        if predicate(&metrics) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}; last scrape:\n{:?}\nserver log:\n{}",
            metrics.samples,
            served.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, String) {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The parsed `/metrics` text.
struct Metrics {
    samples: Vec<prometheus_parse::Sample>,
}

impl Metrics {
    /// The value of the sample `name` whose labels include `labels`, or 0.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.metric == name)
            .find(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map_or(0.0, |s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(ref buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    }
}

async fn scrape(served: &Served) -> Metrics {
    let response = client()
        .get(served.admin_url("/metrics"))
        .send()
        .await
        .expect("scrape /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .unwrap_or_else(|e| panic!("/metrics is not Prometheus text: {e}\n{text}"));
    Metrics {
        samples: scrape.samples,
    }
}

/// The example's round trip: counters, PUT/GET/DELETE, the key listing.
async fn round_trip(served: &Served) {
    let client = client();
    for expected in 1..=3 {
        let (status, body) = get(&client, &served.url("/counter/alice")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body.trim(),
            format!("{{\"name\":\"alice\",\"count\":{expected}}}")
        );
    }
    let put = client
        .put(served.url("/kv/greeting%2Fen"))
        .body("hello, world")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 204);
    assert_eq!(
        get(&client, &served.url("/kv/greeting%2Fen")).await,
        (200, "hello, world".to_string())
    );
    assert_eq!(
        get(&client, &served.url("/kv/counter:alice")).await,
        (200, "3".to_string())
    );
    let (status, listing) = get(&client, &served.url("/kv")).await;
    assert_eq!(status, 200);
    assert_eq!(listing.trim(), r#"["counter:alice","greeting/en"]"#);
    let delete = client
        .delete(served.url("/kv/greeting%2Fen"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 204);
    assert_eq!(get(&client, &served.url("/kv/greeting%2Fen")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_round_trips_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), "", wasikv_artifacts::HTTP_KV, &[]);
    round_trip(&served).await;
    assert!(
        dir.path().join("data").join("default.redb").is_file(),
        "the default bucket is the embedded file"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn the_example_round_trips_on_redis() {
    let dir = tempfile::tempdir().unwrap();
    let run_id = format!("{:08x}", rand::random::<u32>());
    let config = format!(
        "[buckets.cache]\nprovider = \"redis\"\nurl = {:?}\nprefix = \"wasikv-test:serve-{run_id}:\"\n",
        wasikv_redis::testing::test_url()
    );
    let served = serve(
        dir.path(),
        &config,
        wasikv_artifacts::HTTP_KV,
        &["--env", "BUCKET=cache"],
    );
    round_trip(&served).await;
    // Clean up the namespace on the shared server.
    let client = client();
    get(&client, &served.url("/kv")).await;
    client
        .delete(served.url("/kv/counter:alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&client, &served.url("/kv")).await.1.trim(), "[]");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_increments_of_one_counter_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "[buckets.default]\nprovider = \"memory\"\n",
        wasikv_artifacts::HTTP_KV,
        &["--max-concurrent-requests", "64"],
    );
    let client = client();
    let requests = (0..64).map(|_| {
        let client = client.clone();
        let url = served.url("/counter/hits");
        tokio::spawn(async move { get(&client, &url).await })
    });
    let mut counts = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let count: i64 = body
            .trim()
            .trim_start_matches("{\"name\":\"hits\",\"count\":")
            .trim_end_matches('}')
            .parse()
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        counts.push(count);
    }
    counts.sort_unstable();
    assert_eq!(
        counts,
        (1..=64).collect::<Vec<i64>>(),
        "each increment seen once"
    );
    assert_eq!(
        get(&client, &served.url("/kv/counter:hits")).await,
        (200, "64".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_is_a_500_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), "", wasikv_artifacts::HTTP_PROBE, &[]);
    let client = client();
    let response = client.get(served.url("/trap")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.text().await.unwrap();
    assert!(body.contains(&id), "{body}");
    assert_eq!(
        get(&client, &served.url("/")).await,
        (200, "ok\n".to_string())
    );
    // The trap is logged with the request id and what the guest said.
    let log = served.log();
    let line = log
        .lines()
        .find(|l| l.contains(&id))
        .unwrap_or_else(|| panic!("no log line for request {id}:\n{log}"));
    assert!(line.contains("trapped"), "{line}");
    assert!(log.contains("the probe traps on purpose"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_guest_is_stopped_at_the_deadline_while_others_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "",
        wasikv_artifacts::HTTP_PROBE,
        &["--request-timeout-ms", "1500"],
    );
    let client = client();
    let started = Instant::now();
    let looping = {
        let (client, url) = (client.clone(), served.url("/loop"));
        tokio::spawn(async move { get(&client, &url).await })
    };
    let blocked = {
        let (client, url) = (client.clone(), served.url("/sleep/60000"));
        tokio::spawn(async move { get(&client, &url).await })
    };
    // Others are answered while the loop spins.
    let mut answered = 0;
    while !looping.is_finished() {
        assert_eq!(get(&client, &served.url("/")).await.0, 200);
        answered += 1;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "loop never stopped"
        );
    }
    let (status, body) = looping.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("1500 ms"), "{body}");
    assert!(answered > 0, "no request was answered during the loop");
    // A guest blocked in a host call is stopped too.
    let (status, _) = blocked.await.unwrap();
    assert_eq!(status, 504);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(get(&client, &served.url("/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_over_the_limit_are_413() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "",
        wasikv_artifacts::HTTP_PROBE,
        &["--max-request-body-bytes", "1000"],
    );
    let client = client();
    let echo = |len: usize| {
        client
            .post(served.url("/echo"))
            .body(vec![b'x'; len])
            .send()
    };
    let small = echo(1000).await.unwrap();
    assert_eq!(small.status().as_u16(), 200);
    assert_eq!(small.text().await.unwrap(), "1000 bytes\n");
    let large = echo(1001).await.unwrap();
    assert_eq!(large.status().as_u16(), 413);
    assert!(
        large
            .text()
            .await
            .unwrap()
            .contains("serve.max_request_body_bytes"),
        "the error names the limit"
    );
    // A chunked body (no Content-Length) that grows past the limit.
    let mut stream = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let mut request =
        b"POST /echo HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..3 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b'y'; 0x200]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert_eq!(get(&client, &served.url("/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_beyond_the_concurrency_limit_are_503() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "",
        wasikv_artifacts::HTTP_PROBE,
        &["--max-concurrent-requests", "2", "--admin", "127.0.0.1:0"],
    );
    let client = client();
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let (client, url) = (client.clone(), served.url("/sleep/3000"));
            tokio::spawn(async move { get(&client, &url).await })
        })
        .collect();
    wait_for_metrics(&served, "two instances in flight", |m| {
        m.value("wasikv_http_instances_in_flight", &[]) == 2.0
    })
    .await;
    let busy = client.get(served.url("/")).send().await.unwrap();
    assert_eq!(busy.status().as_u16(), 503);
    assert_eq!(busy.headers()["retry-after"], "1");
    for request in slow {
        assert_eq!(request.await.unwrap().0, 200);
    }
    // Permits come back as the instances end, shortly after their responses.
    wait_for_metrics(&served, "no instance in flight", |m| {
        m.value("wasikv_http_instances_in_flight", &[]) == 0.0
    })
    .await;
    assert_eq!(get(&client, &served.url("/")).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_allow_list_holds_under_serve() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "[buckets.secret]\nprovider = \"memory\"\n[components.http-probe]\nbuckets = [\"default\"]\n",
        wasikv_artifacts::HTTP_PROBE,
        &["--name", "http-probe"],
    );
    let client = client();
    assert_eq!(
        get(&client, &served.url("/open/default")).await,
        (200, "opened\n".to_string())
    );
    assert_eq!(
        get(&client, &served.url("/open/secret")).await,
        (403, "access-denied\n".to_string())
    );
    assert_eq!(
        get(&client, &served.url("/open/nope")).await,
        (404, "no-such-store\n".to_string())
    );
}

/// A served component without a `[components.NAME]` section opens nothing
/// unless `access.unlisted` allows it (serve's default is deny), and the
/// server says so when it starts.
#[tokio::test(flavor = "multi_thread")]
async fn an_unlisted_component_opens_nothing_under_serve_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "[access]\n[buckets.default]\nprovider = \"memory\"\n",
        wasikv_artifacts::HTTP_PROBE,
        &["--name", "renamed"],
    );
    let client = client();
    assert_eq!(
        get(&client, &served.url("/open/default")).await,
        (403, "access-denied\n".to_string())
    );
    assert!(
        served
            .log()
            .contains("component \"renamed\" has no [components.renamed] section"),
        "{}",
        served.log()
    );
    // A section for the component, whatever the case of its name, opens its buckets.
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "[buckets.default]\nprovider = \"memory\"\n[components.RENAMED]\nbuckets = [\"default\"]\n",
        wasikv_artifacts::HTTP_PROBE,
        &["--name", "renamed"],
    );
    assert_eq!(
        get(&client, &served.url("/open/default")).await,
        (200, "opened\n".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_requests_and_key_value_calls() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        "[buckets.default]\nprovider = \"memory\"\n",
        wasikv_artifacts::HTTP_KV,
        &["--admin", "127.0.0.1:0"],
    );
    let client = client();
    // The memory bucket connects at once: healthy.
    let started = Instant::now();
    loop {
        let (status, body) = get(&client, &served.admin_url("/healthz")).await;
        if status == 200 {
            assert_eq!(body, "ok\n");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..5 {
        assert_eq!(get(&client, &served.url("/counter/m")).await.0, 200);
    }
    for i in 0..3 {
        let put = client
            .put(served.url(&format!("/kv/k{i}")))
            .body("v")
            .send()
            .await
            .unwrap();
        assert_eq!(put.status().as_u16(), 204);
    }
    assert_eq!(get(&client, &served.url("/kv/missing")).await.0, 404);
    assert_eq!(get(&client, &served.url("/nowhere")).await.0, 404);
    // Responses are counted once the request ends; a scrape sees them all.
    let m = scrape(&served).await;
    let requests = |status: &str| m.value("wasikv_http_requests_total", &[("status", status)]);
    assert_eq!(requests("200"), 5.0);
    assert_eq!(requests("204"), 3.0);
    assert_eq!(requests("404"), 2.0);
    assert_eq!(
        m.value("wasikv_http_request_duration_seconds_count", &[]),
        10.0
    );
    let calls = |op: &str| {
        m.value(
            "wasikv_kv_calls_total",
            &[("bucket", "default"), ("provider", "memory"), ("op", op)],
        )
    };
    assert_eq!(calls("increment"), 5.0);
    assert_eq!(calls("set"), 3.0);
    assert_eq!(calls("get"), 1.0);
    assert_eq!(
        m.value(
            "wasikv_kv_call_duration_seconds_count",
            &[("bucket", "default"), ("op", "increment")]
        ),
        5.0
    );
    // Each instance ends shortly after its response.
    wait_for_metrics(&served, "no instance in flight", |m| {
        m.value("wasikv_http_instances_in_flight", &[]) == 0.0
    })
    .await;
    assert_eq!(get(&client, &served.admin_url("/nowhere")).await.0, 404);
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_503_until_every_bucket_connects() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let served = serve(
        dir.path(),
        "[buckets.down]\nprovider = \"redis\"\nurl = \"redis://127.0.0.1:1/0\"\nprefix = \"x:\"\n",
        wasikv_artifacts::HTTP_PROBE,
        &["--admin", "127.0.0.1:0"],
    );
    let client = client();
    let (status, body) = get(&client, &served.admin_url("/healthz")).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("down"), "{body}");
    // The component is served meanwhile; the failing bucket is an error to it.
    assert_eq!(get(&client, &served.url("/open/default")).await.0, 200);
    assert_eq!(get(&client, &served.url("/open/down")).await.0, 500);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(
        dir.path(),
        "",
        wasikv_artifacts::HTTP_PROBE,
        &["--admin", "127.0.0.1:0", "--drain-timeout-ms", "20000"],
    );
    let keep_alive = client();
    // An idle keep-alive connection must not hold the drain up.
    assert_eq!(get(&keep_alive, &served.url("/")).await.0, 200);
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let url = served.url("/sleep/2000");
            // A client each: three connections.
            tokio::spawn(async move { get(&client(), &url).await })
        })
        .collect();
    wait_for_metrics(&served, "three instances in flight", |m| {
        m.value("wasikv_http_instances_in_flight", &[]) == 3.0
    })
    .await;
    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // New connections are refused once the listener is closed.
    loop {
        match tokio::net::TcpStream::connect(served.addr).await {
            Err(e) => {
                // Refused once the listener is closed; a connection that
                // reached the listen backlog as it closed is reset instead.
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
                    ),
                    "{e}"
                );
                break;
            }
            Ok(_) => {
                assert!(
                    signalled.elapsed() < Duration::from_secs(2),
                    "still accepting connections 2 s after SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    for request in slow {
        let (status, body) = request.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "slept 2000 ms\n"));
    }
    let exit = wait_exit(&mut served.child, Duration::from_secs(20));
    assert_eq!(exit.code(), Some(0), "{}", served.log());
    assert!(served.log().contains("draining"), "{}", served.log());
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_refuses_what_it_cannot_serve_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasikv"));
        cmd.arg("serve").args(args).current_dir(dir.path());
        for (key, _) in std::env::vars() {
            if key.starts_with("WASIKV_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("XDG_CACHE_HOME", dir.path().join("xdg-cache"));
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A command component is not an HTTP component.
    let (code, stderr) = run(&[wasikv_artifacts::COUNTER, "--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("does not export wasi:http/incoming-handler"),
        "{stderr}"
    );
    // Limits that cannot work are configuration errors naming the key.
    let (code, stderr) = run(&[
        wasikv_artifacts::HTTP_KV,
        "--listen",
        "127.0.0.1:0",
        "--max-concurrent-requests",
        "0",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("serve.max_concurrent_requests"), "{stderr}");
    // A listener that cannot be bound names the address and the key.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run(&[wasikv_artifacts::HTTP_KV, "--listen", &addr]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (serve.listen)")),
        "{stderr}"
    );
}
