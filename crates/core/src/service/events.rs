//! Reading the outbox: an organization's membership events, so that a consumer that missed
//! deliveries catches up by polling; and purging what is older than the retention window.
//! (Each change writes its own events, in its own transaction, where it is made.)

use super::{Roster, paged, probe};
use crate::error::CoreResult;
use crate::events::{Event, EventFilter, PurgedEvents};
use crate::ids::{EventId, OrganizationId};
use crate::model::{Page, Paged};
use crate::permissions::{Actor, Permission};

impl Roster {
    /// A page of `org`'s events, oldest first unless the page asks otherwise. Private metadata
    /// is shown as the objects' own reads show it.
    pub async fn list_events(
        &self,
        actor: &Actor,
        org: OrganizationId,
        filter: &EventFilter,
        page: Page,
    ) -> CoreResult<Paged<Event>> {
        let (mut s, held) = self
            .read_holding(actor, org, Permission::EventsRead)
            .await?;
        let rows = s.list_events(org, filter, probe(page)?).await?;
        let mut events = paged(rows, page, |e| e.id.0);
        events.items = events
            .items
            .into_iter()
            .map(|e| e.as_seen_with(held))
            .collect();
        Ok(events)
    }

    /// Purges events and delivery attempts older than the retention window (an event a
    /// delivery still waits for, or a former member's record names, stays), and the endpoints
    /// of deleted organizations once nothing waits for them; what went.
    pub async fn purge_expired_events(&self) -> CoreResult<PurgedEvents> {
        let now = crate::timestamp::Timestamp::now().millis();
        let kept = i64::try_from(self.event_retention.as_millis()).unwrap_or(i64::MAX);
        // The smallest time-ordered id of the cutoff's millisecond: every older id is below it.
        let millis = u64::try_from(now.saturating_sub(kept)).unwrap_or(0);
        let before =
            EventId(uuid::Builder::from_unix_timestamp_millis(millis, &[0; 10]).into_uuid());
        let mut tx = self.store.begin().await?;
        let purged = tx.purge_events_before(before).await?;
        tx.commit().await?;
        Ok(purged)
    }
}
