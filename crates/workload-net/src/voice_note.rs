//! Voice notes: an Opus-sized recording uploaded over HTTPS to a media host
//! (`POST /upload/<id>`, as WhatsApp's `mmg.whatsapp.net` takes media) and downloaded again
//! (`GET /media/<id>`), checked byte for byte.

use async_trait::async_trait;
use bytes::Bytes;
use callwall_workload::{Figures, HttpProto, Kind, VoiceNoteFigures, VoiceNoteParams};

use crate::http::HttpClient;
use crate::{ms, Measured, Target, Workload, WorkloadError};

/// The voice-note client.
pub struct Client(pub VoiceNoteParams);

/// A recording of `size` bytes that is not all one value (so a truncated or shifted download
/// does not compare equal).
pub fn recording(size: u64, seed: u64) -> Bytes {
    let mut x = seed | 1;
    (0..size)
        .map(|_| {
            // xorshift64: cheap, deterministic filler.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

#[async_trait]
impl Workload for Client {
    fn kind(&self) -> Kind {
        Kind::VoiceNote
    }

    async fn run(&self, t: &Target) -> Measured {
        let mut f = VoiceNoteFigures { bytes: self.0.size(), ..Default::default() };
        let started = std::time::Instant::now();
        let error = send_note(&self.0, t, &mut f).await.err();
        let arrived = u64::from(f.uploaded) * f.bytes + u64::from(f.downloaded) * f.bytes;
        if arrived > 0 {
            f.bytes_arrived = Some(arrived);
            let secs = started.elapsed().as_secs_f64();
            f.rate_kbit = (secs > 0.0).then(|| arrived as f64 * 8.0 / secs / 1000.0);
        }
        Measured { figures: Figures::VoiceNote(f), error }
    }
}

async fn send_note(
    p: &VoiceNoteParams,
    t: &Target,
    f: &mut VoiceNoteFigures,
) -> Result<(), WorkloadError> {
    let seed: u64 = rand::random();
    let id = format!("note-{seed:016x}");
    let note = recording(p.size(), seed);
    let started = std::time::Instant::now();
    let mut client = HttpClient::connect(HttpProto::Https, t).await?;
    let budget = t.request_budget();
    tokio::time::timeout(
        budget,
        client.post(&t.server_name, &format!("/upload/{id}"), note.clone()),
    )
    .await
    .map_err(|_| WorkloadError::Timeout(format!("upload not done after {budget:?}")))??;
    let up = started.elapsed();
    f.uploaded = true;
    f.upload_ms = Some(ms(up));
    // The other side fetches it on a connection of its own.
    let down_start = std::time::Instant::now();
    let mut client = HttpClient::connect(HttpProto::Https, t).await?;
    let budget = t.request_budget();
    let got =
        tokio::time::timeout(budget, client.get(&t.server_name, &format!("/media/{id}"), true))
            .await
            .map_err(|_| WorkloadError::Timeout(format!("download not done after {budget:?}")))??;
    let down = down_start.elapsed();
    f.downloaded = true;
    f.download_ms = Some(ms(down));
    f.intact = got.body.as_ref() == Some(&note);
    let secs = (up + down).as_secs_f64();
    if secs > 0.0 {
        f.goodput_kbit = Some(2.0 * note.len() as f64 * 8.0 / secs / 1000.0);
    }
    if !f.intact {
        return Err(WorkloadError::Http(format!(
            "downloaded {} bytes differ from the {} uploaded",
            got.bytes,
            note.len()
        )));
    }
    Ok(())
}
