//! Where the hdfs sink's files go: a small storage trait with a local file system
//! implementation and (feature `hdfs`) a native HDFS one (`hdfs-native`, no JVM).
//!
//! A path is resolved once per sink: a scheme in `hdfs.path` says which store
//! (`file:///…`, `hdfs://nn:8020/…`); without one the default file system applies
//! (`fs.defaultFS` from `-Dfs.defaultFS=…`, else `core-site.xml` in the `--conf` directory or
//! `HADOOP_CONF_DIR`, else the local file system), see [`set_hadoop_settings`].
//!
//! `s3://bucket/…` / `s3a://bucket/…` (feature `s3`, the `s3` module) and `webhdfs://nn:port/…`
//! (feature `webhdfs`, the `webhdfs` module) go over HTTP.
//!
//! Local writes run on blocking threads (never on a runtime worker). The contract of
//! [`OutputFile::write`] is Flume's `hflush`: once it returns, the bytes are visible to
//! readers and survive the writer process.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::super::BoxFuture;

/// A file open for writing.
pub trait OutputFile: Send {
    /// Appends `data` and flushes it (Flume's `hflush`).
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<()>>;
    /// Closes the file.
    fn close(self: Box<Self>) -> BoxFuture<'static, io::Result<()>>;
}

/// One store.
pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Creates `path` (and its parent directories); fails if it exists.
    fn create<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Box<dyn OutputFile>>>;
    /// Renames `from` to `to` (fails if `to` exists).
    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>>;
    /// The length of `path`, or None when it does not exist.
    fn len<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>>;
    /// Makes `path` hold only its first `len` bytes (after a failed write), ending any
    /// writer's lease first where the store has leases.
    fn truncate<'a>(&'a self, path: &'a str, len: u64) -> BoxFuture<'a, io::Result<()>>;
    /// Files (not directories) under `dir`, recursively, at most `limit` of them.
    fn list_files<'a>(
        &'a self,
        dir: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, io::Result<Vec<String>>>;
    /// For messages: `file:///` or `hdfs://host:port`.
    fn describe(&self) -> String;
}

/// The local file system.
#[derive(Debug, Default)]
pub struct LocalStorage;

struct LocalFile {
    file: Option<std::fs::File>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(io::Error::other)?
}

impl OutputFile for LocalFile {
    fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
        Box::pin(async move {
            let mut file = self
                .file
                .take()
                .ok_or_else(|| io::Error::other("file is closed"))?;
            let (file, r) = tokio::task::spawn_blocking(move || {
                use std::io::Write as _;
                let r = file.write_all(&data);
                (file, r)
            })
            .await
            .map_err(io::Error::other)?;
            self.file = Some(file);
            r
        })
    }
    fn close(self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
        Box::pin(async move {
            if let Some(f) = self.file {
                blocking(move || {
                    drop(f);
                    Ok(())
                })
                .await?;
            }
            Ok(())
        })
    }
}

impl Storage for LocalStorage {
    fn create<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Box<dyn OutputFile>>> {
        let p = PathBuf::from(path);
        Box::pin(async move {
            let f = blocking(move || {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&p)
            })
            .await?;
            Ok(Box::new(LocalFile { file: Some(f) }) as Box<dyn OutputFile>)
        })
    }
    fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>> {
        let (from, to) = (PathBuf::from(from), PathBuf::from(to));
        Box::pin(blocking(move || {
            if to.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists", to.display()),
                ));
            }
            std::fs::rename(&from, &to)
        }))
    }
    fn len<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
        let p = PathBuf::from(path);
        Box::pin(blocking(move || match std::fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }))
    }
    fn truncate<'a>(&'a self, path: &'a str, len: u64) -> BoxFuture<'a, io::Result<()>> {
        let p = PathBuf::from(path);
        Box::pin(blocking(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&p)?;
            if f.metadata()?.len() <= len {
                return Ok(());
            }
            f.set_len(len)?;
            f.sync_data()
        }))
    }
    fn list_files<'a>(
        &'a self,
        dir: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, io::Result<Vec<String>>> {
        let d = PathBuf::from(dir);
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            let mut stack = vec![d];
            while let Some(dir) = stack.pop() {
                let rd = match std::fs::read_dir(&dir) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                for entry in rd {
                    let entry = entry?;
                    let ft = entry.file_type()?;
                    if ft.is_dir() {
                        stack.push(entry.path());
                    } else if ft.is_file() {
                        out.push(entry.path().to_string_lossy().into_owned());
                        if out.len() >= limit {
                            return Ok(out);
                        }
                    }
                }
            }
            Ok(out)
        }))
    }
    fn describe(&self) -> String {
        "file:///".into()
    }
}

/// The Hadoop settings that decide the default file system and configure the stores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HadoopSettings {
    /// `fs.defaultFS` (None = the local file system).
    pub default_fs: Option<String>,
    /// The directory holding `core-site.xml` / `hdfs-site.xml`, if one was found.
    pub conf_dir: Option<PathBuf>,
    /// Every property of that `core-site.xml`, overridden by `-Dname=value` (the S3 store
    /// reads `fs.s3a.*` from here). Empty when neither gives any.
    pub properties: std::collections::BTreeMap<String, String>,
}

impl HadoopSettings {
    /// A property (from `-D` or `core-site.xml`), trimmed, None when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Every `<property><name>…</name><value>…</value>` of a Hadoop `*-site.xml`, in order
/// (a later one wins); XML entities in values are decoded.
pub fn properties_from_site_xml(xml: &str) -> Vec<(String, String)> {
    let re = regex::Regex::new(
        r"(?s)<property>\s*<name>\s*([^<]*?)\s*</name>\s*<value>\s*([^<]*?)\s*</value>",
    )
    .expect("static regex");
    re.captures_iter(xml)
        .map(|c| (c[1].to_string(), xml_unescape(&c[2])))
        .collect()
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

static SETTINGS: RwLock<Option<HadoopSettings>> = RwLock::new(None);

/// Reads `fs.defaultFS` (or its old name `fs.default.name`) from a `core-site.xml`.
pub fn default_fs_from_core_site(xml: &str) -> Option<String> {
    let re = regex::Regex::new(
        r"(?s)<property>\s*<name>\s*(fs\.defaultFS|fs\.default\.name)\s*</name>\s*<value>\s*([^<]*?)\s*</value>",
    )
    .expect("static regex");
    let mut found = None;
    for c in re.captures_iter(xml) {
        // fs.defaultFS wins over the deprecated name.
        if &c[1] == "fs.defaultFS" || found.is_none() {
            found = Some(c[2].to_string());
        }
    }
    found
}

/// Resolves the default file system the way `flume-ng` (through Hadoop's configuration)
/// does: `-Dfs.defaultFS=…`, else `core-site.xml` in the `--conf` directory, else in
/// `HADOOP_CONF_DIR`, else the local file system.
pub fn resolve_hadoop_settings(
    system: &std::collections::HashMap<String, String>,
    conf_dir: Option<&Path>,
) -> HadoopSettings {
    let env_dir = std::env::var_os("HADOOP_CONF_DIR").map(PathBuf::from);
    let dirs: Vec<PathBuf> = conf_dir
        .map(Path::to_path_buf)
        .into_iter()
        .chain(env_dir)
        .collect();
    let mut settings = HadoopSettings::default();
    for d in &dirs {
        if let Ok(xml) = std::fs::read_to_string(d.join("core-site.xml")) {
            settings.conf_dir = Some(d.clone());
            settings.default_fs = default_fs_from_core_site(&xml);
            settings.properties = properties_from_site_xml(&xml).into_iter().collect();
            if settings.default_fs.is_some() {
                break;
            }
        }
    }
    if let Some(fs) = system
        .get("fs.defaultFS")
        .or_else(|| system.get("fs.default.name"))
    {
        settings.default_fs = Some(fs.clone());
    }
    for (k, v) in system {
        if k.starts_with("fs.") || k.starts_with("hadoop.") {
            settings.properties.insert(k.clone(), v.clone());
        }
    }
    settings
}

/// Sets the process-wide Hadoop settings (the `flumen agent` command does this before it
/// builds sinks; without it, paths without a scheme go to the local file system).
pub fn set_hadoop_settings(settings: HadoopSettings) {
    *SETTINGS.write().unwrap_or_else(|e| e.into_inner()) = Some(settings);
}

fn hadoop_settings() -> HadoopSettings {
    SETTINGS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_default()
}

/// A store and the path inside it, from `hdfs.path`'s literal scheme and authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `file` or `hdfs`.
    pub scheme: String,
    /// `host:port` (empty for `file`).
    pub authority: String,
    /// The pattern of the path inside the store (escapes unresolved).
    pub path: String,
}

fn split_uri(s: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = s.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
    {
        return None;
    }
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((
        scheme.to_ascii_lowercase(),
        auth.to_string(),
        path.to_string(),
    ))
}

/// Where `hdfs.path` points, with the default file system applied when it has no scheme.
pub fn locate(path_pattern: &str) -> Location {
    if let Some((scheme, authority, path)) = split_uri(path_pattern) {
        return Location {
            scheme,
            authority,
            path,
        };
    }
    if let Some((scheme, authority, _)) =
        hadoop_settings().default_fs.as_deref().and_then(split_uri)
    {
        if scheme != "file" {
            let path = if path_pattern.starts_with('/') {
                path_pattern.to_string()
            } else {
                format!("/user/{}/{path_pattern}", user_name())
            };
            return Location {
                scheme,
                authority,
                path,
            };
        }
    }
    Location {
        scheme: "file".into(),
        authority: String::new(),
        path: path_pattern.to_string(),
    }
}

fn user_name() -> String {
    std::env::var("HADOOP_USER_NAME")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "root".into())
}

/// Opens the store of `loc`.
pub fn open(loc: &Location) -> Result<Arc<dyn Storage>, String> {
    match loc.scheme.as_str() {
        "file" => Ok(Arc::new(LocalStorage)),
        #[cfg(feature = "hdfs")]
        "hdfs" => hdfs_native_store::HdfsStorage::connect(&loc.authority, hadoop_settings())
            .map(|s| Arc::new(s) as Arc<dyn Storage>),
        #[cfg(not(feature = "hdfs"))]
        "hdfs" => Err(
            "this build of flumen has no HDFS client (cargo feature `hdfs` of flumen-flow)".into(),
        ),
        #[cfg(feature = "s3")]
        "s3" | "s3a" => s3::S3Storage::open(&loc.authority, &hadoop_settings())
            .map(|s| Arc::new(s) as Arc<dyn Storage>),
        #[cfg(not(feature = "s3"))]
        "s3" | "s3a" => {
            Err("this build of flumen has no S3 client (cargo feature `s3` of flumen-flow)".into())
        }
        #[cfg(feature = "webhdfs")]
        "webhdfs" | "swebhdfs" => webhdfs::WebHdfsStorage::open(&loc.scheme, &loc.authority)
            .map(|s| Arc::new(s) as Arc<dyn Storage>),
        #[cfg(not(feature = "webhdfs"))]
        "webhdfs" | "swebhdfs" => Err(
            "this build of flumen has no WebHDFS client (cargo feature `webhdfs` of flumen-flow)"
                .into(),
        ),
        other => Err(format!(
            "the `{other}://` file system is not supported (supported: file://, hdfs://, \
             webhdfs://, swebhdfs://, s3://, s3a://)"
        )),
    }
}

#[cfg(any(feature = "s3", feature = "webhdfs"))]
mod http;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "webhdfs")]
pub mod webhdfs;

#[cfg(feature = "hdfs")]
mod hdfs_native_store {
    //! `hdfs://` through the pure-Rust `hdfs-native` client.
    use std::io;
    use std::time::Duration;

    use bytes::Bytes;
    use hdfs_native::{Client, ClientBuilder, WriteOptions};

    use super::{BoxFuture, HadoopSettings, OutputFile, Storage};

    fn io_err(e: hdfs_native::HdfsError) -> io::Error {
        match e {
            hdfs_native::HdfsError::IOError(e) => e,
            hdfs_native::HdfsError::FileNotFound(p) => {
                io::Error::new(io::ErrorKind::NotFound, format!("file not found: {p}"))
            }
            hdfs_native::HdfsError::AlreadyExists(p) => {
                io::Error::new(io::ErrorKind::AlreadyExists, format!("file exists: {p}"))
            }
            other => io::Error::other(other.to_string()),
        }
    }

    /// A NameNode.
    pub struct HdfsStorage {
        url: String,
        client: Client,
    }

    impl std::fmt::Debug for HdfsStorage {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "HdfsStorage({})", self.url)
        }
    }

    impl HdfsStorage {
        pub fn connect(authority: &str, settings: HadoopSettings) -> Result<Self, String> {
            let url = format!("hdfs://{authority}");
            let mut b = ClientBuilder::new().with_url(url.clone());
            if let Some(d) = &settings.conf_dir {
                b = b.with_config_dir(d.to_string_lossy().into_owned());
            }
            if std::env::var_os("HADOOP_USER_NAME").is_none() {
                if let Ok(u) = std::env::var("USER") {
                    b = b.with_user(u);
                }
            }
            let client = b
                .build()
                .map_err(|e| format!("cannot set up the HDFS client for {url}: {e}"))?;
            Ok(HdfsStorage { url, client })
        }
    }

    struct HdfsFile {
        w: Option<hdfs_native::file::FileWriter>,
    }

    impl OutputFile for HdfsFile {
        fn write(&mut self, data: Vec<u8>) -> BoxFuture<'_, io::Result<()>> {
            Box::pin(async move {
                let w = self
                    .w
                    .as_mut()
                    .ok_or_else(|| io::Error::other("file is closed"))?;
                w.write_bytes(Bytes::from(data)).await.map_err(io_err)?;
                w.hsync().await.map_err(io_err)
            })
        }
        fn close(mut self: Box<Self>) -> BoxFuture<'static, io::Result<()>> {
            Box::pin(async move {
                if let Some(mut w) = self.w.take() {
                    w.close().await.map_err(io_err)?;
                }
                Ok(())
            })
        }
    }

    impl Storage for HdfsStorage {
        fn create<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Box<dyn OutputFile>>> {
            Box::pin(async move {
                let w = self
                    .client
                    .create(path, WriteOptions::default())
                    .await
                    .map_err(io_err)?;
                Ok(Box::new(HdfsFile { w: Some(w) }) as Box<dyn OutputFile>)
            })
        }
        fn rename<'a>(&'a self, from: &'a str, to: &'a str) -> BoxFuture<'a, io::Result<()>> {
            Box::pin(async move { self.client.rename(from, to, false).await.map_err(io_err) })
        }
        fn len<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<Option<u64>>> {
            Box::pin(async move {
                match self.client.get_file_info(path).await {
                    Ok(s) => Ok(Some(s.length as u64)),
                    Err(hdfs_native::HdfsError::FileNotFound(_)) => Ok(None),
                    Err(e) => Err(io_err(e)),
                }
            })
        }
        fn truncate<'a>(&'a self, path: &'a str, len: u64) -> BoxFuture<'a, io::Result<()>> {
            Box::pin(async move {
                // End the dead writer's lease so the file is closed at its true length.
                for _ in 0..60 {
                    match self.client.recover_lease(path).await {
                        Ok(true) => break,
                        Ok(false) => tokio::time::sleep(Duration::from_millis(500)).await,
                        Err(hdfs_native::HdfsError::FileNotFound(_)) => return Ok(()),
                        // Not under construction (already closed): nothing to recover.
                        Err(hdfs_native::HdfsError::RPCError(_, _)) => break,
                        Err(e) => return Err(io_err(e)),
                    }
                }
                let info = self.client.get_file_info(path).await.map_err(io_err)?;
                if info.length as u64 <= len {
                    return Ok(());
                }
                // Hadoop 2.7's truncate is not in the client: copy the committed prefix to a
                // side file and swap it in (an exceptional path, bounded by rollSize).
                let reader = self.client.read(path).await.map_err(io_err)?;
                let data = reader.read_range(0, len as usize).await.map_err(io_err)?;
                let side = format!("{path}.truncating");
                let _ = self.client.delete(&side, false).await;
                let mut w = self
                    .client
                    .create(&side, WriteOptions::default())
                    .await
                    .map_err(io_err)?;
                w.write_bytes(data).await.map_err(io_err)?;
                w.close().await.map_err(io_err)?;
                self.client.delete(path, false).await.map_err(io_err)?;
                self.client.rename(&side, path, false).await.map_err(io_err)
            })
        }
        fn list_files<'a>(
            &'a self,
            dir: &'a str,
            limit: usize,
        ) -> BoxFuture<'a, io::Result<Vec<String>>> {
            Box::pin(async move {
                let it = self.client.list_status_iter(dir, true);
                let mut out = Vec::new();
                while let Some(s) = it.next().await {
                    match s {
                        Ok(s) if !s.isdir => {
                            out.push(s.path);
                            if out.len() >= limit {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(hdfs_native::HdfsError::FileNotFound(_)) => break,
                        Err(e) => return Err(io_err(e)),
                    }
                }
                Ok(out)
            })
        }
        fn describe(&self) -> String {
            self.url.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_site_and_locations() {
        let xml = "<configuration>\n <property><name>fs.default.name</name><value>hdfs://old:1</value></property>\n <property>\n  <name>fs.defaultFS</name>\n  <value>hdfs://127.0.0.1:18020</value>\n </property>\n</configuration>";
        assert_eq!(
            default_fs_from_core_site(xml).as_deref(),
            Some("hdfs://127.0.0.1:18020")
        );
        let l = locate("hdfs://nn:8020/user/x/%y");
        assert_eq!(
            (l.scheme.as_str(), l.authority.as_str(), l.path.as_str()),
            ("hdfs", "nn:8020", "/user/x/%y")
        );
        let l = locate("file:///tmp/a");
        assert_eq!((l.scheme.as_str(), l.path.as_str()), ("file", "/tmp/a"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("core-site.xml"), xml).unwrap();
        let mut sys = std::collections::HashMap::new();
        let s = resolve_hadoop_settings(&sys, Some(dir.path()));
        assert_eq!(s.default_fs.as_deref(), Some("hdfs://127.0.0.1:18020"));
        sys.insert("fs.defaultFS".to_string(), "file:///".to_string());
        let s = resolve_hadoop_settings(&sys, Some(dir.path()));
        assert_eq!(s.default_fs.as_deref(), Some("file:///"));
    }

    #[tokio::test]
    async fn local_storage_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/f.tmp").to_string_lossy().into_owned();
        let fs = LocalStorage;
        let mut f = fs.create(&p).await.unwrap();
        f.write(b"hello world".to_vec()).await.unwrap();
        assert!(fs.create(&p).await.is_err(), "create must not overwrite");
        f.close().await.unwrap();
        fs.truncate(&p, 5).await.unwrap();
        assert_eq!(fs.len(&p).await.unwrap(), Some(5));
        let to = p.trim_end_matches(".tmp").to_string();
        fs.rename(&p, &to).await.unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"hello");
        let files = fs
            .list_files(&dir.path().to_string_lossy(), 10)
            .await
            .unwrap();
        assert_eq!(files, vec![to]);
        assert_eq!(fs.len(&p).await.unwrap(), None);
    }
}
