//! Idempotency records: a caller's key, its request and the answer its change gave, written in
//! that change's transaction; read before a keyed request runs; purged once expired.

use async_trait::async_trait;
use roster_core::Timestamp;
use roster_core::error::CoreResult;
use roster_core::idempotency::{
    IdempotencyKey, IdempotencyRecord, IdempotentRequest, StoredResponse,
};
use roster_core::store::rows::*;

use super::*;
use crate::conn::{Arg, Conn, SqlRow};

const RECORD_COLS: &str = "actor, idempotency_key, method, path, body_sha256, status, response, \
    created_at, expires_at";

fn record_row(r: &impl SqlRow) -> CoreResult<IdempotencyRecord> {
    let key = IdempotencyKey::parse("idempotency_key", r.text(1)?.as_bytes())
        .map_err(|_| corrupt("idempotency key"))?;
    Ok(IdempotencyRecord {
        request: IdempotentRequest {
            actor: r.text(0)?,
            key,
            method: r.text(2)?,
            path: r.text(3)?,
            body_sha256: r.bytes(4)?,
        },
        response: StoredResponse {
            status: u16::try_from(r.int(5)?).map_err(|_| corrupt("idempotent answer's status"))?,
            body: r.bytes(6)?,
        },
        created_at: Timestamp(r.int(7)?),
        expires_at: Timestamp(r.int(8)?),
    })
}

#[async_trait]
impl<C: Conn> IdempotencyRows for SqlSession<C> {
    async fn idempotency_record(
        &mut self,
        actor: &str,
        key: &str,
        now: Timestamp,
    ) -> CoreResult<Option<IdempotencyRecord>> {
        let sql = format!(
            "SELECT {RECORD_COLS} FROM idempotency_records \
             WHERE actor = $1 AND idempotency_key = $2 AND expires_at > $3"
        );
        let args = vec![
            Arg::Text(actor.to_owned()),
            Arg::Text(key.to_owned()),
            ts(now),
        ];
        self.one(&sql, args, record_row).await
    }

    async fn insert_idempotency_record(&mut self, record: &IdempotencyRecord) -> CoreResult<bool> {
        let IdempotencyRecord {
            request,
            response,
            created_at,
            expires_at,
        } = record;
        // An expired record of the key is replaced; a live one is left, and nothing written.
        let sql = format!(
            "INSERT INTO idempotency_records ({RECORD_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (actor, idempotency_key) DO UPDATE SET \
             method = excluded.method, path = excluded.path, \
             body_sha256 = excluded.body_sha256, status = excluded.status, \
             response = excluded.response, created_at = excluded.created_at, \
             expires_at = excluded.expires_at \
             WHERE idempotency_records.expires_at <= excluded.created_at"
        );
        let args = vec![
            Arg::Text(request.actor.clone()),
            Arg::Text(request.key.as_str().to_owned()),
            Arg::Text(request.method.clone()),
            Arg::Text(request.path.clone()),
            Arg::Bytes(request.body_sha256.clone()),
            Arg::Int(i64::from(response.status)),
            Arg::Bytes(response.body.clone()),
            ts(*created_at),
            ts(*expires_at),
        ];
        Ok(self.0.execute(&sql, args).await? == 1)
    }

    async fn purge_expired_idempotency_records(&mut self, now: Timestamp) -> CoreResult<u64> {
        self.0
            .execute(
                "DELETE FROM idempotency_records WHERE expires_at <= $1",
                vec![ts(now)],
            )
            .await
    }
}
