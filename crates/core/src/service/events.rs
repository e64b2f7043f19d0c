//! Reading the outbox: an organization's membership events, so that a consumer that missed
//! deliveries catches up by polling. (Each change writes its own events, in its own
//! transaction, where it is made.)

use super::{Roster, paged, probe};
use crate::error::CoreResult;
use crate::events::{Event, EventFilter};
use crate::ids::OrganizationId;
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
}
