//! The operator console at `/console`: plain ES modules and a stylesheet from
//! `crates/rules-api/console/`, compiled into the binary (nothing is read from disk
//! or fetched from elsewhere at run time). The page talks to `/api` with the key the
//! operator enters, kept in the browser's session storage.
//!
//! Every asset is served with a Content-Security-Policy that allows this origin only
//! (no inline script or style, no other host), so the browser itself refuses a
//! request to another origin.

use actix_web::http::header;
use actix_web::{get, web, HttpResponse};

/// The policy of every console response: this origin only, nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One bundled file: its path under `/console/`, its media type and its bytes.
pub struct Asset {
    pub path: &'static str,
    pub media_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $media:expr),* $(,)?) => {
        /// Every file of `crates/rules-api/console/` (a test checks none is missing).
        pub const ASSETS: &[Asset] = &[$(Asset {
            path: $path,
            media_type: $media,
            bytes: include_bytes!(concat!("../console/", $path)),
        }),*];
    };
}

const JS: &str = "text/javascript; charset=utf-8";

assets! {
    "index.html" => "text/html; charset=utf-8",
    "console.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/main.js" => JS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/chart.js" => JS,
    "js/trace.js" => JS,
    "js/time.js" => JS,
    "js/pages/common.js" => JS,
    "js/pages/rules.js" => JS,
    "js/pages/editor.js" => JS,
    "js/pages/test.js" => JS,
    "js/pages/backtest.js" => JS,
    "js/pages/activity.js" => JS,
    "js/pages/cooldowns.js" => JS,
}

/// The asset at `path` (relative to `/console/`; empty is the page itself).
pub fn asset(path: &str) -> Option<&'static Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

fn served(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.media_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        // Bundled with the binary: revalidate, so an upgrade is seen at once.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.bytes)
}

/// `/console` → `/console/`, so the page's relative module paths resolve.
#[get("/console")]
pub async fn root() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

/// The console's page and files.
#[get("/console/{path:.*}")]
pub async fn file(path: web::Path<String>) -> HttpResponse {
    match asset(&path) {
        Some(asset) => served(asset),
        None => HttpResponse::NotFound()
            .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
            .content_type("text/plain; charset=utf-8")
            .body("no such console file\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_console_directory_is_bundled_and_only_those() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("the console directory") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(&dir).expect("under the directory");
                    on_disk.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut bundled: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        bundled.sort();
        assert_eq!(on_disk, bundled);
    }

    #[test]
    fn the_page_is_the_empty_path_and_unknown_files_are_none() {
        assert_eq!(asset("").map(|a| a.path), Some("index.html"));
        assert!(asset("js/missing.js").is_none());
        assert!(asset("../Cargo.toml").is_none());
    }
}
