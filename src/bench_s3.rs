//! `cairn bench --s3`: S3 beside REST on a 3-node `replicas:3` cluster started in the scratch
//! directory, both doors driven by this process (requests spread over the nodes, S3 signed
//! with SigV4 over an unsigned payload, so the generator hashes no bodies): PUT and GET of 64
//! objects of 16 MiB, then PUT, GET, HEAD, LIST and DELETE of 5,000 objects of 4 KiB, at
//! concurrency 8 and 32, each workload on S3 and on REST in turn.

use crate::bench_meta::phase;
use anyhow::{ensure, Context, Result};
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::Method;
use std::path::Path;
use std::time::{Instant, SystemTime};

/// One way in: S3 or REST, on every node.
struct Door {
    s3: bool,
    /// Base URLs, one per node (S3: the S3 door; REST: the client door).
    urls: Vec<String>,
    /// Where the objects go: a bucket (S3) or the same directory (REST).
    bucket: String,
    id: String,
    secret: String,
    http: reqwest::Client,
}

impl Door {
    fn url(&self, i: usize, key: &str) -> String {
        let base = &self.urls[i % self.urls.len()];
        if self.s3 {
            format!("{base}/{}/{key}", self.bucket)
        } else {
            format!("{base}/v1/fs/{}/{key}", self.bucket)
        }
    }

    /// Sends a request, signed (S3) or with HTTP Basic (REST); fails unless it succeeds.
    async fn send(&self, method: Method, url: String, body: Option<Bytes>) -> Result<reqwest::Response> {
        let mut req = self.http.request(method.clone(), &url);
        if self.s3 {
            for (k, v) in self.sign(method.as_str(), &url)? {
                req = req.header(k, v);
            }
        } else {
            req = req.basic_auth(&self.id, Some(&self.secret));
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = req.send().await.with_context(|| format!("{method} {url}"))?;
        ensure!(resp.status().is_success(), "{method} {url}: {}", resp.status());
        Ok(resp)
    }

    /// The SigV4 headers of a request whose payload is not signed.
    fn sign(&self, method: &str, url: &str) -> Result<Vec<(String, String)>> {
        let host = url.split('/').nth(2).unwrap_or_default().to_string();
        let identity = aws_credential_types::Credentials::new(&self.id, &self.secret, None, None, "bench").into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let headers = [("host", host.as_str()), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
        let signable = SignableRequest::new(method, url, headers.into_iter(), SignableBody::UnsignedPayload)?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        let mut out: Vec<(String, String)> =
            instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        out.push(("x-amz-content-sha256".into(), "UNSIGNED-PAYLOAD".into()));
        Ok(out)
    }

    /// Reads a whole object, returning its length.
    async fn get(&self, i: usize, key: &str) -> Result<u64> {
        let mut body = self.send(Method::GET, self.url(i, key), None).await?.bytes_stream();
        let mut n = 0;
        while let Some(piece) = body.next().await {
            n += piece?.len() as u64;
        }
        Ok(n)
    }

    /// Lists one page of up to 1,000 keys below `prefix` after `after`: the number listed.
    async fn list(&self, i: usize, prefix: &str, after: &str) -> Result<usize> {
        let base = &self.urls[i % self.urls.len()];
        let (url, marker) = if self.s3 {
            (
                format!(
                    "{base}/{}?list-type=2&max-keys=1000&prefix={prefix}/&start-after={prefix}/{after}",
                    self.bucket
                ),
                "<Key>",
            )
        } else {
            // A REST listing continues after a cursor: the name, hex-encoded.
            let cursor: String = after.bytes().map(|b| format!("{b:02x}")).collect();
            (format!("{base}/v1/fs/{}/{prefix}?limit=1000&after={cursor}", self.bucket), "\"name\"")
        };
        let text = self.send(Method::GET, url, None).await?.text().await?;
        Ok(text.matches(marker).count())
    }
}

/// Rates of one door at one concurrency: PUT and GET MiB/s of large objects, then PUT, GET,
/// HEAD, LIST (keys/s) and DELETE per second of small ones.
async fn workloads(d: &Door, concurrency: usize, big: usize, small: usize) -> Result<[f64; 7]> {
    let data16 = Bytes::from((0..16 << 20).map(|i: usize| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let data4 = Bytes::from(vec![0x5au8; 4096]);
    let (big_dir, small_dir) = (format!("big{concurrency}"), format!("small{concurrency}"));
    let (bd, sd) = (big_dir.as_str(), small_dir.as_str());
    let key = |dir: &str, i: usize| format!("{dir}/{i:06}");
    let (data16, data4) = (&data16, &data4);
    let put_big = phase(big, concurrency, |i| async move {
        d.send(Method::PUT, d.url(i, &key(bd, i)), Some(data16.clone())).await.map(drop)
    })
    .await?;
    let get_big = phase(big, concurrency, |i| async move {
        ensure!(d.get(i + 1, &key(bd, i)).await? == 16 << 20, "a 16 MiB object came back short");
        Ok(())
    })
    .await?;
    let put = phase(small, concurrency, |i| async move {
        d.send(Method::PUT, d.url(i, &key(sd, i)), Some(data4.clone())).await.map(drop)
    })
    .await?;
    let get = phase(small, concurrency, |i| async move {
        ensure!(d.get(i + 1, &key(sd, i)).await? == 4096, "a 4 KiB object came back short");
        Ok(())
    })
    .await?;
    let head =
        phase(
            small,
            concurrency,
            |i| async move { d.send(Method::HEAD, d.url(i + 2, &key(sd, i)), None).await.map(drop) },
        )
        .await?;
    let pages = small.div_ceil(1000);
    let t = Instant::now();
    let listed: usize = futures::stream::iter(0..pages * 4)
        .map(|p| async move { d.list(p, sd, &format!("{:06}", (p % pages) * 1000)).await })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .sum::<Result<usize>>()?;
    let list = listed as f64 / t.elapsed().as_secs_f64();
    let delete =
        phase(
            small,
            concurrency,
            |i| async move { d.send(Method::DELETE, d.url(i, &key(sd, i)), None).await.map(drop) },
        )
        .await?;
    for i in 0..big {
        d.send(Method::DELETE, d.url(i, &key(bd, i)), None).await?;
    }
    Ok([put_big * 16.0, get_big * 16.0, put, get, head, list, delete])
}

/// Runs the benchmark.
pub async fn run(scratch: &Path, small: usize) -> Result<()> {
    let big = 64;
    let cluster = crate::local_cluster::throwaway(scratch, ".cairn-bench-s3-", 3).await?;
    let c = &cluster.clients[0];
    let key = crate::commands::admin_key_in(&cluster.dir.path().join("node-0")).context("no admin key")?;
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let mut s3_urls = Vec::new();
    let mut rest_urls = Vec::new();
    for client in &cluster.clients {
        let info: serde_json::Value = http
            .get(format!("{}/v1/node", client.backend().url()))
            .basic_auth(&key.id, Some(&key.secret))
            .send()
            .await?
            .json()
            .await?;
        s3_urls.push(info["s3_url"].as_str().context("a node serves no S3")?.to_string());
        rest_urls.push(client.backend().url());
    }
    for dir in ["/s3bench", "/restbench"] {
        c.mkdir(dir, true).await?;
        c.set_policy(dir, cairn_core::Policy::Replicas(3), None).await?;
    }
    let door = |s3: bool| Door {
        s3,
        urls: if s3 { s3_urls.clone() } else { rest_urls.clone() },
        bucket: if s3 { "s3bench".into() } else { "restbench".into() },
        id: key.id.clone(),
        secret: key.secret.clone(),
        http: http.clone(),
    };
    let (s3, rest) = (door(true), door(false));
    println!(
        "cairn bench --s3: a 3-node replicas:3 cluster in {}; {big} objects of 16 MiB, {small} of 4 KiB; \
         S3 beside REST, one workload at a time",
        cluster.dir.path().display()
    );
    let names = [
        "PUT 16 MiB (MiB/s)",
        "GET 16 MiB (MiB/s)",
        "PUT 4 KiB (/s)",
        "GET 4 KiB (/s)",
        "HEAD (/s)",
        "LIST (keys/s)",
        "DELETE (/s)",
    ];
    let targets = [">= 160", ">= 1,400", ">= 800", ">= 4,000", ">= 5,000", "-", ">= 1,000"];
    for concurrency in [8, 32] {
        let a = workloads(&s3, concurrency, big, small).await?;
        let b = workloads(&rest, concurrency, big, small).await?;
        println!("\nconcurrency {concurrency}");
        println!(
            "{:<22} {:>12} {:>12} {:>9}  {}",
            "",
            "S3",
            "REST",
            "S3/REST",
            if concurrency == 8 { "S3 target" } else { "" }
        );
        for k in 0..names.len() {
            let target = if concurrency == 8 { targets[k] } else { "" };
            println!("{:<22} {:>12.0} {:>12.0} {:>8.2}x  {target}", names[k], a[k], b[k], a[k] / b[k]);
        }
    }
    Ok(())
}
