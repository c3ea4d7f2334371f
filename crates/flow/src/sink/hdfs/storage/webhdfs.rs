//! `webhdfs://namenode:http-port/…` (and `swebhdfs://` over TLS): HDFS through its REST
//! API, for hosts that reach the NameNode's HTTP port but not its RPC port.
//!
//! Writes use the classic two-step protocol every Hadoop version since 1.0 speaks (Hadoop
//! 2.7 has no `noredirect=true`, which is why OpenDAL's WebHDFS service cannot write to it):
//!
//! 1. `PUT  /webhdfs/v1/<path>?op=CREATE&overwrite=false` to the NameNode, no body →
//!    `307 Temporary Redirect` with a `Location` on a DataNode;
//! 2. `PUT <Location>` with the data → `201 Created`.
//!
//! `create` sends an empty file that way; every `write` (one per committed batch) is an
//! `op=APPEND` (`POST`, same two steps, `200 OK`). A WebHDFS append closes the file when
//! the request ends, so a committed batch is durable and visible, like `hflush`, and no
//! writer lease outlives a crash (nothing to recover at start but the rename).
//!
//! `rename` is `op=RENAME` (HDFS refuses to overwrite an existing destination: `false`),
//! `len` is `op=GETFILESTATUS`, `list_files` is `op=LISTSTATUS` walked recursively, and
//! `truncate` (the sink's repair after a failed batch) is `op=TRUNCATE`, which Hadoop has
//! since 2.7.0; when it answers `false` the last block is being recovered, and the store
//! waits (up to 60 s) until the file has its new length.
//!
//! The user is `user.name=` `HADOOP_USER_NAME`, else `USER` (simple authentication; no
//! Kerberos/SPNEGO). The HTTP client is the one the S3 store uses.

use std::io;
use std::time::{Duration, Instant};

use super::http::{client, status_error, transport, uri_encode};
use super::{user_name, BoxFuture, OutputFile, Storage};

/// A NameNode's REST endpoint.
#[derive(Debug, Clone)]
pub struct WebHdfsStorage {
    /// `http://host:port` (or https for swebhdfs).
    base: String,
    user: String,
}

impl WebHdfsStorage {
    /// The store of `webhdfs://authority` (`swebhdfs` = https).
    pub fn open(scheme: &str, authority: &str) -> Result<Self, String> {
        if authority.is_empty() {
            return Err(format!(
                "a {scheme}:// path needs the NameNode's HTTP address: {scheme}://host:port/path"
            ));
        }
        let http = if scheme == "swebhdfs" {
            "https"
        } else {
            "http"
        };
        // Hadoop 2's default NameNode HTTP port.
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:50070")
        };
        Ok(WebHdfsStorage {
            base: format!("{http}://{authority}"),
            user: user_name(),
        })
    }

    fn url(&self, path: &str, op: &str, extra: &[(&str, String)]) -> String {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        let mut u = format!(
            "{}/webhdfs/v1{}?op={op}&user.name={}",
            self.base,
            uri_encode(&path, true),
            uri_encode(&self.user, false)
        );
        for (k, v) in extra {
            u.push('&');
            u.push_str(k);
            u.push('=');
            u.push_str(&uri_encode(v, false));
        }
        u
    }

    /// Asks the NameNode where to send data (step 1), then sends it (step 2).
    async fn two_step(
        &self,
        method: reqwest::Method,
        url: String,
        data: Vec<u8>,
        what: &str,
    ) -> io::Result<()> {
        let resp = client()
            .request(method.clone(), &url)
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        let location = match resp.status().as_u16() {
            307 | 302 | 303 => resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .ok_or_else(|| io::Error::other(format!("{what}: redirect without Location")))?,
            _ => return Err(status_error(what, resp).await),
        };
        let resp = client()
            .request(method, &location)
            .header("content-type", "application/octet-stream")
            .body(data)
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(status_error(what, resp).await)
        }
    }

    async fn json(
        &self,
        method: reqwest::Method,
        url: String,
        what: &str,
    ) -> io::Result<Option<serde_json::Value>> {
        let resp = client()
            .request(method, &url)
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(status_error(what, resp).await);
        }
        let text = resp.text().await.map_err(|e| transport(what, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| io::Error::other(format!("{what}: bad JSON answer {text:?}: {e}")))
    }

    async fn status(&self, path: &str) -> io::Result<Option<serde_json::Value>> {
        let what = format!("GETFILESTATUS {path}");
        let v = self
            .json(
                reqwest::Method::GET,
                self.url(path, "GETFILESTATUS", &[]),
                &what,
            )
            .await?;
        Ok(v.and_then(|v| v.get("FileStatus").cloned()))
    }

    async fn file_len(&self, path: &str) -> io::Result<Option<u64>> {
        Ok(self
            .status(path)
            .await?
            .and_then(|s| s.get("length").and_then(|l| l.as_u64())))
    }

    fn boolean(v: Option<serde_json::Value>) -> bool {
        v.and_then(|v| v.get("boolean").and_then(|b| b.as_bool()))
            .unwrap_or(false)
    }
}

struct WebHdfsFile {
    store: WebHdfsStorage,
    path: String,
}

impl OutputFile for WebHdfsFile {
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            if data.is_empty() {
                return Ok(());
            }
            let what = format!("APPEND {}{}", self.store.base, self.path);
            let url = self.store.url(&self.path, "APPEND", &[]);
            self.store
                .two_step(reqwest::Method::POST, url, data, &what)
                .await
        })
    }
    fn close(self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        // Every append already closed the file.
        Box::pin(async { Ok(()) })
    }
}

impl Storage for WebHdfsStorage {
    fn create<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Box<dyn OutputFile>>> {
        Box::pin(async move {
            let what = format!("CREATE {}{path}", self.base);
            let url = self.url(path, "CREATE", &[("overwrite", "false".into())]);
            self.two_step(reqwest::Method::PUT, url, Vec::new(), &what)
                .await?;
            Ok(Box::new(WebHdfsFile {
                store: self.clone(),
                path: path.to_string(),
            }) as Box<dyn OutputFile>)
        })
    }

    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            let what = format!("RENAME {from} to {to}");
            let url = self.url(from, "RENAME", &[("destination", to.to_string())]);
            let v = self.json(reqwest::Method::PUT, url, &what).await?;
            if Self::boolean(v) {
                return Ok(());
            }
            // HDFS says only `false`: tell why.
            if self.file_len(to).await?.is_some() {
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{what}: {to} exists"),
                ))
            } else if self.file_len(from).await?.is_none() {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{what}: {from} does not exist"),
                ))
            } else {
                Err(io::Error::other(format!("{what}: the NameNode refused")))
            }
        })
    }

    fn len<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        Box::pin(self.file_len(path))
    }

    fn truncate<'a>(&'a self, path: &'a str, len: u64) -> BoxFuture<'a, io::Result<()>> {
        Box::pin(async move {
            match self.file_len(path).await? {
                Some(n) if n > len => {}
                _ => return Ok(()), // missing or already short enough
            }
            let what = format!("TRUNCATE {path} to {len}");
            let url = self.url(path, "TRUNCATE", &[("newlength", len.to_string())]);
            let v = self.json(reqwest::Method::POST, url, &what).await?;
            if Self::boolean(v) {
                return Ok(());
            }
            // Block recovery in progress: wait for the new length.
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if self.file_len(path).await? == Some(len) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: the file did not reach its new length within 60 s"),
            ))
        })
    }

    fn list_files<'a>(
        &'a self,
        dir: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, io::Result<Vec<String>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let mut stack = vec![dir.trim_end_matches('/').to_string()];
            while let Some(d) = stack.pop() {
                let what = format!("LISTSTATUS {d}");
                let url = self.url(if d.is_empty() { "/" } else { &d }, "LISTSTATUS", &[]);
                let Some(v) = self.json(reqwest::Method::GET, url, &what).await? else {
                    continue;
                };
                let entries = v
                    .pointer("/FileStatuses/FileStatus")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                for e in entries {
                    let name = e.get("pathSuffix").and_then(|s| s.as_str()).unwrap_or("");
                    let kind = e.get("type").and_then(|s| s.as_str()).unwrap_or("");
                    if name.is_empty() {
                        // `dir` is itself a file.
                        if kind == "FILE" {
                            out.push(d.clone());
                        }
                        continue;
                    }
                    let p = format!("{d}/{name}");
                    match kind {
                        "DIRECTORY" => stack.push(p),
                        "FILE" => {
                            out.push(p);
                            if out.len() >= limit {
                                return Ok(out);
                            }
                        }
                        _ => {}
                    }
                }
            }
            Ok(out)
        })
    }

    fn describe(&self) -> String {
        format!("{} (WebHDFS)", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = WebHdfsStorage {
            base: "http://nn:50070".into(),
            user: "maria dev".into(),
        };
        assert_eq!(
            s.url("/a b/c", "RENAME", &[("destination", "/x/y".into())]),
            "http://nn:50070/webhdfs/v1/a%20b/c?op=RENAME&user.name=maria%20dev&destination=%2Fx%2Fy"
        );
        let s = WebHdfsStorage::open("webhdfs", "nn").unwrap();
        assert_eq!(s.base, "http://nn:50070");
        let s = WebHdfsStorage::open("swebhdfs", "nn:9871").unwrap();
        assert_eq!(s.base, "https://nn:9871");
        assert!(WebHdfsStorage::open("webhdfs", "").is_err());
    }
}
