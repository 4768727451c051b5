//! Web pages: one page, then N objects (map tiles at `/<z>/<x>/<y>.png`, as
//! `tile.openstreetmap.org` serves them) over one connection, HTTPS/1.1 over TCP or HTTP/3
//! over QUIC. An object that fails or times out is counted and the connection is opened again
//! for the next one, as a browser would.

use async_trait::async_trait;
use callwall_workload::{Figures, Kind, WebFigures, WebParams};

use crate::http::HttpClient;
use crate::{ms, Measured, Target, Workload, WorkloadError};

/// The web client.
pub struct Client(pub WebParams);

/// The path of tile `i` of a map view around Krasnodar at zoom 13.
pub fn tile_path(i: u32, bytes: u64) -> String {
    format!("/13/{}/{}.png?bytes={bytes}", 5180 + i % 4, 2880 + i / 4)
}

#[async_trait]
impl Workload for Client {
    fn kind(&self) -> Kind {
        Kind::Web
    }

    async fn run(&self, t: &Target) -> Measured {
        let p = self.0;
        let mut f = WebFigures { proto: p.proto, objects: p.objects, ..Default::default() };
        let started = std::time::Instant::now();
        let mut first_error: Option<WorkloadError> = None;
        let mut client: Option<HttpClient> = None;
        let paths = std::iter::once((true, format!("/?bytes={}", p.page_size.get())))
            .chain((0..p.objects).map(|i| (false, tile_path(i, p.object_size.get()))));
        for (is_page, path) in paths {
            let res = async {
                if client.is_none() {
                    client = Some(HttpClient::connect(p.proto, t).await?);
                }
                let Some(c) = client.as_mut() else {
                    return Err(WorkloadError::Http("no connection".into()));
                };
                let budget = t.request_budget();
                tokio::time::timeout(budget, c.get(&t.server_name, &path, false)).await.map_err(
                    |_| WorkloadError::Timeout(format!("{path} not done after {budget:?}")),
                )?
            }
            .await;
            match res {
                Ok(got) => {
                    f.bytes += got.bytes;
                    if is_page {
                        f.page_ok = true;
                    } else {
                        f.objects_ok += 1;
                    }
                }
                Err(e) => {
                    if let Some(c) = client.take() {
                        c.close();
                    }
                    if !is_page {
                        f.failed_objects += 1;
                    }
                    first_error.get_or_insert(e);
                    if is_page {
                        // No page, no tiles: the browser shows an error.
                        f.failed_objects = p.objects;
                        break;
                    }
                }
            }
            if tokio::time::Instant::now() >= t.deadline {
                f.failed_objects = p.objects - f.objects_ok;
                first_error.get_or_insert(WorkloadError::Timeout(
                    "the page did not complete in time".into(),
                ));
                break;
            }
        }
        if let Some(c) = client {
            c.close();
        }
        let elapsed = started.elapsed();
        if f.page_ok && f.objects_ok == p.objects {
            f.complete_ms = Some(ms(elapsed));
        }
        if f.bytes > 0 && elapsed.as_secs_f64() > 0.0 {
            f.rate_kbit = Some(f.bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0);
        }
        Measured { figures: Figures::Web(f), error: first_error }
    }
}
