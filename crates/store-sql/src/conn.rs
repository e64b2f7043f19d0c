//! The connection abstraction the shared SQL runs on.

use async_trait::async_trait;
use roster_core::CoreError;
use roster_core::error::CoreResult;
use uuid::Uuid;

/// A statement argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Uuid(Uuid),
    OptUuid(Option<Uuid>),
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
    Bool(bool),
    Bytes(Vec<u8>),
}

/// Typed access to the columns of one result row, by position.
pub trait SqlRow: Send + Sync {
    fn uuid(&self, i: usize) -> CoreResult<Uuid>;
    fn opt_uuid(&self, i: usize) -> CoreResult<Option<Uuid>>;
    fn int(&self, i: usize) -> CoreResult<i64>;
    fn opt_int(&self, i: usize) -> CoreResult<Option<i64>>;
    fn text(&self, i: usize) -> CoreResult<String>;
    fn opt_text(&self, i: usize) -> CoreResult<Option<String>>;
    fn boolean(&self, i: usize) -> CoreResult<bool>;
    fn bytes(&self, i: usize) -> CoreResult<Vec<u8>>;
}

/// One connection or transaction of a backend.
#[async_trait]
pub trait Conn: Send + 'static {
    type Row: SqlRow;

    /// Whether a `WITH` clause may hold `INSERT` and `DELETE` statements and `SELECT … FOR
    /// UPDATE` (PostgreSQL: yes; SQLite: no), so that a batch's lock and reads, or its writes,
    /// take one statement.
    const WRITES_IN_WITH: bool;

    /// What makes a `SELECT` lock its rows and pass over those another transaction holds
    /// (PostgreSQL: ` FOR UPDATE SKIP LOCKED`; SQLite, one writer at a time: nothing).
    const SKIP_LOCKED: &'static str;

    /// Runs a script of several statements without arguments (migrations).
    async fn execute_script(&mut self, sql: &str) -> CoreResult<()>;
    /// Runs a statement; returns the number of rows it affected.
    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<u64>;
    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg>) -> CoreResult<Vec<Self::Row>>;
    /// Commits a transaction (a no-op for a read connection).
    async fn commit(self) -> CoreResult<()>;
    /// Takes the write locks of the organizations `ids` (in id order) for the rest of the
    /// transaction; returns the id and slug of each that exists.
    async fn lock_organization_slugs(&mut self, ids: &[Uuid]) -> CoreResult<Vec<(Uuid, String)>>;
    /// Takes the row locks of the users `ids` (in id order) for the rest of the transaction.
    async fn lock_users(&mut self, ids: &[Uuid]) -> CoreResult<()>;
}

/// Turns a unique or foreign-key violation, identified by the constraint's name (or, on SQLite,
/// by the columns its message names), into the client error it stands for. One place, so that
/// every store reports a clash the same way.
pub fn constraint_error(constraint_or_message: &str) -> Option<CoreError> {
    let c = constraint_or_message;
    let pick = |needles: &[&str]| needles.iter().any(|n| c.contains(n));
    if pick(&["organizations_slug_key", "organizations.slug"]) {
        Some(CoreError::conflict(
            "slug_taken",
            "an organization with this slug already exists",
        ))
    } else if pick(&["users_email_key", "users.email_normalized"]) {
        Some(CoreError::conflict(
            "email_taken",
            "a user with this email already exists",
        ))
    } else if pick(&[
        "memberships_org_user_key",
        "memberships.org_id, memberships.user_id",
    ]) {
        Some(CoreError::conflict(
            "already_a_member",
            "the user is already a member of this organization",
        ))
    } else if pick(&[
        "memberships_external_id_key",
        "memberships.org_id, memberships.external_id",
    ]) {
        Some(CoreError::conflict(
            "external_id_taken",
            "another member of this organization has this external id",
        ))
    } else if pick(&[
        "memberships_directory_user_name_key",
        "index 'memberships_directory_user_name_key'",
    ]) {
        Some(CoreError::conflict(
            "directory_user_name_taken",
            "another member of this organization has this userName",
        ))
    } else if pick(&[
        "projects_external_id_key",
        "projects.org_id, projects.external_id",
    ]) {
        Some(CoreError::conflict(
            "external_id_taken",
            "another project of this organization has this external id",
        ))
    } else if pick(&["memberships_pending_invitation_key"]) {
        Some(CoreError::conflict(
            "already_invited",
            "this address already has a pending invitation to the organization",
        ))
    } else if pick(&["roles_org_key_key", "roles.org_id, roles.key"]) {
        Some(CoreError::conflict(
            "role_key_taken",
            "the organization already has a role with this key",
        ))
    } else if pick(&["projects_org_slug_key", "projects.org_id, projects.slug"]) {
        Some(CoreError::conflict(
            "slug_taken",
            "the organization already has a project with this slug",
        ))
    } else if pick(&[
        "project_memberships_project_user_key",
        "project_memberships.project_id, project_memberships.user_id",
    ]) {
        Some(CoreError::conflict(
            "already_a_member",
            "the user is already a member of this project",
        ))
    } else if pick(&[
        "identity_project_memberships_project_identity_key",
        "identity_project_memberships.project_id, identity_project_memberships.identity_id",
    ]) {
        Some(CoreError::conflict(
            "already_a_member",
            "Identity is already a member of the project",
        ))
    } else {
        None
    }
}
