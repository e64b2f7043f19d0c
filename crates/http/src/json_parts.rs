//! JSON answers built around one long array (a bulk removal's removed memberships), written a
//! part at a time as the client reads them, so that the answer is never whole in memory: each
//! item is turned into its wire form only when its part is written.
//!
//! Why: a 100,000-member bulk removal's answer is about 40 MiB of JSON. Serialized in one go it
//! sat in a buffer that doubled as it grew, beside a vector of every item's wire form, and the
//! server's peak memory was several times its size under load (measured when this
//! landed; see its commit). An answer of one part or less is sent whole, with its `Content-Length`.
//!
//! Knows no route and no dialect: a handler gives the text before the array, the items, how to
//! render one, and the text after.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use serde::Serialize;

/// Items serialized in one part: a few hundred KiB for memberships. An answer with more items
/// than this is written in parts.
pub const ITEMS_A_PART: usize = 512;

/// `{head}item,item,…{tail}` over any iterator that knows its length, where `head` opens the array (`{"memberships":[`) and `tail`
/// closes it and whatever encloses it (`]}`).
pub struct JsonParts<I, F> {
    head: Option<Bytes>,
    items: I,
    render: F,
    first: bool,
    tail: Option<Bytes>,
}

impl<I, O, F> JsonParts<I, F>
where
    I: ExactSizeIterator,
    F: FnMut(I::Item) -> O,
    O: Serialize,
{
    pub fn new(
        head: impl Into<Bytes>,
        items: impl IntoIterator<IntoIter = I>,
        render: F,
        tail: impl Into<Bytes>,
    ) -> Self {
        JsonParts {
            head: Some(head.into()),
            items: items.into_iter(),
            render,
            first: true,
            tail: Some(tail.into()),
        }
    }

    /// The next part: the head, then the items a part at a time, then the tail.
    fn next_part(&mut self) -> Option<Result<Bytes, serde_json::Error>> {
        if let Some(head) = self.head.take() {
            return Some(Ok(head));
        }
        let mut part = Vec::new();
        for item in self.items.by_ref().take(ITEMS_A_PART) {
            if !std::mem::take(&mut self.first) {
                part.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut part, &(self.render)(item)) {
                return Some(Err(e));
            }
        }
        if !part.is_empty() {
            return Some(Ok(part.into()));
        }
        self.tail.take().map(Ok)
    }
}

impl<I, O, F> http_body::Body for JsonParts<I, F>
where
    I: ExactSizeIterator + Unpin,
    F: FnMut(I::Item) -> O + Unpin,
    O: Serialize,
{
    type Data = Bytes;
    type Error = serde_json::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.next_part().map(|part| part.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.tail.is_none()
    }
}

impl<I, O, F> IntoResponse for JsonParts<I, F>
where
    I: ExactSizeIterator + Unpin + Send + 'static,
    F: FnMut(I::Item) -> O + Unpin + Send + 'static,
    O: Serialize,
{
    fn into_response(mut self) -> Response {
        let json = [(CONTENT_TYPE, "application/json")];
        if self.items.len() > ITEMS_A_PART {
            return (json, Body::new(self)).into_response();
        }
        // Small enough to send whole, with its length.
        let mut whole = Vec::new();
        while let Some(part) = self.next_part() {
            match part {
                Ok(part) => whole.extend_from_slice(&part),
                Err(e) => {
                    tracing::error!(error = %e, "an answer could not be serialized");
                    return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
        (json, whole).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Wire {
        n: usize,
        name: String,
    }

    #[derive(Serialize)]
    struct Whole {
        items: Vec<Wire>,
        count: usize,
    }

    fn wire(n: usize) -> Wire {
        Wire {
            n,
            name: format!("item \"{n}\""),
        }
    }

    fn parts_of(items: usize) -> (Vec<Bytes>, Vec<u8>) {
        let mut body = JsonParts::new(
            &br#"{"items":["#[..],
            0..items,
            wire,
            format!(r#"],"count":{items}}}"#),
        );
        let parts: Vec<Bytes> = std::iter::from_fn(|| body.next_part())
            .map(Result::unwrap)
            .collect();
        let whole = serde_json::to_vec(&Whole {
            items: (0..items).map(wire).collect(),
            count: items,
        })
        .unwrap();
        (parts, whole)
    }

    #[test]
    fn the_parts_make_the_same_json_as_serializing_the_whole_answer() {
        for items in [0, 1, ITEMS_A_PART, ITEMS_A_PART + 1, 3 * ITEMS_A_PART + 7] {
            let (parts, whole) = parts_of(items);
            assert_eq!(parts.concat(), whole, "{items} items");
        }
    }

    #[test]
    fn a_long_array_is_written_a_part_at_a_time() {
        let (parts, _) = parts_of(3 * ITEMS_A_PART + 7);
        // head, four parts of items, tail
        assert_eq!(parts.len(), 6);
        assert!(parts.iter().all(|p| p.len() < 64 * 1024));
    }

    #[tokio::test]
    async fn only_an_answer_longer_than_a_part_is_sent_without_a_length() {
        use http_body::Body as _;
        let small = JsonParts::new("[", vec![1, 2, 3], |n: i32| n, "]").into_response();
        assert_eq!(small.body().size_hint().exact(), Some(7));
        let long = JsonParts::new("[", vec![1; ITEMS_A_PART + 1], |n: i32| n, "]").into_response();
        assert_eq!(long.body().size_hint().exact(), None);
        assert_eq!(long.headers()["content-type"], "application/json");
        let body = axum::body::to_bytes(long.into_body(), usize::MAX)
            .await
            .unwrap();
        let parsed: Vec<i32> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, vec![1; ITEMS_A_PART + 1]);
    }
}
