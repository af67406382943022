//! The bounds of the vocabulary: every length a peer sends is checked against one of these
//! before anything is allocated.

/// Bytes of lines or keys one page carries at most: a page fits in one link packet with room
/// for its header. A page that reaches it ends early and says where the next one starts.
pub const MAX_PAGE_BYTES: usize = 56 * 1024;

/// Most keys in one page of a listing.
pub const MAX_KEYS_PER_PAGE: usize = 1000;

/// Most log lines in one page.
pub const MAX_LOG_LINES_PER_PAGE: usize = 1000;

/// Longest log line carried (the audit log's canonical lines are far shorter).
pub const MAX_LOG_LINE: usize = 16 * 1024;

/// Longest text filter in a log query.
pub const MAX_FILTER_TEXT: usize = 64;

/// Longest quorum backup public key (X-Wing public keys are 1,216 bytes).
pub const MAX_RECOVERY_PUBLIC_KEY: usize = 2048;

/// Longest encoded set of Feldman commitments (16 compressed P-256 points and a generator).
pub const MAX_COMMITMENTS: usize = 17 * 33 + 64;

/// Longest backup header carried in a restore (the container's own bound).
pub const MAX_BACKUP_HEADER: usize = 2048;

/// Longest backup trailer carried at the end of a backup (the container's fixed part).
pub const MAX_BACKUP_TRAILER: usize = 256;

/// Most bytes of a backup file one restore upload request carries: one request fits one link
/// packet with room for its header.
pub const MAX_RESTORE_CHUNK: usize = 48 * 1024;

/// Most keys a restore diff names per kind of change (the counts are always whole): each
/// with a label of up to 128 bytes, four full lists still fit one link packet.
pub const MAX_DIFF_KEYS: usize = 100;

/// Most pinned terminals one listing carries (far more than a partition is paired with; a
/// partition with more lists the first ones by fingerprint).
pub const MAX_TERMINALS_LISTED: usize = 1000;
