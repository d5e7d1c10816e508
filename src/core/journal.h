/* SPDX-License-Identifier: MIT */
/*
 * journal.h - metadata transactions over the on-media undo log.
 *
 * Protocol (see format.h): before a metadata range is changed in place, its
 * old bytes are appended to the log and made durable, then j_used is
 * advanced with one 8-byte persisted store; commit persists every changed
 * range, drains, and sets j_used = 0 (one 8-byte store).  A crash at any
 * fence leaves either the old state (log non-empty: mount rolls it back in
 * reverse order) or the new one (log empty).
 *
 * One transaction at a time per mount (the journal mutex); transactions are
 * short and never wait for pins: break_layouts runs before ufs_tx_begin().
 *
 * Lock order: fs namespace lock -> inode i_rwsem -> layout lock ->
 *   journal mutex -> journal hook lock -> allocator lock.
 * (The hook lock only guards the hook table; hooks run under it.)
 */
#ifndef UDAX_JOURNAL_H
#define UDAX_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "media.h"

struct ufs_journal;
struct ufs_tx;

/*
 * ufs_journal_head_ok() - is @h a sound journal header (magic, padding,
 * checksum of its static fields)?  j_seq and j_used are not covered by the
 * checksum: ufs_journal_open() judges j_used, ufs_journal_scan() j_seq.
 * Context: any; reads only @h.
 * Return: true when mount accepts the header.
 */
bool ufs_journal_head_ok(const struct ufs_journal_head *h);
/*
 * ufs_journal_open() - check the journal header of a validated superblock.
 * Context: mount or fsck, before any transaction.
 * Return: 0 with *@out set; -ENOMEM; -EUCLEAN with dx_errmsg() naming the journal and its offset
 * when the header or a record is corrupt.
 */
int ufs_journal_open(struct ufs_journal **out, struct dx_media *m, const struct ufs_super *sb);
/*
 * ufs_journal_close() - free the journal and clear *@jp (NULL-safe).
 * Context: no transaction open.  Return: nothing.
 */
void ufs_journal_close(struct ufs_journal **jp);
/*
 * ufs_journal_dirty() - does the log hold an unfinished transaction?
 * Context: any (one atomic load).  Return: true when j_used != 0.
 */
bool ufs_journal_dirty(const struct ufs_journal *j);
/*
 * ufs_journal_recover() - roll back an unfinished transaction.  With
 * @dry_run only validate and count.
 * Context: mount or fsck, before any transaction.
 * Return: records rolled back (>= 0) or -EUCLEAN (corrupt record: nothing
 * written).
 */
int ufs_journal_recover(struct ufs_journal *j, bool dry_run);

/*
 * ufs_journal_scan() - validate the unfinished transaction in the log, as
 * recovery does (each record's length, sequence, target range outside the
 * journal and inside the file system, checksum), writing nothing; when
 * @fn is given, hand it each record's target offset and old bytes in the
 * order a rollback applies them (newest first).  fsck uses it to check
 * the rolled-back state in a private copy.
 * Context: no transaction running (mount or fsck, before any); @fn must
 * not touch the journal.
 * Return: records in the log (0 when empty); -EUCLEAN with dx_errmsg()
 * naming the corrupt record and its offset (@fn was not called); or the
 * first non-zero value @fn returned.
 */
int ufs_journal_scan(struct ufs_journal *j,
		     int (*fn)(void *arg, uint64_t dev_off, const void *old, uint32_t len),
		     void *arg);

/*
 * ufs_journal_replay() - roll back an unfinished transaction but keep the
 * log, so that the caller can still refuse the mount and leave the image
 * as it found it: the bytes the records overwrite are saved in DRAM first
 * (*@undo).  Finish with ufs_journal_replay_end(): @keep empties the log,
 * otherwise the saved bytes go back and the image is byte-identical to
 * what it was (a crash meanwhile leaves the log to replay again).
 * Context: mount, before any transaction.
 * Return: records applied (>= 0; *@undo is NULL when 0), -EUCLEAN (corrupt
 * record: nothing written), -EROFS, -ENOMEM.
 */
struct ufs_journal_undo;
int ufs_journal_replay(struct ufs_journal *j, struct ufs_journal_undo **undo);
/*
 * ufs_journal_replay_end() - finish ufs_journal_replay(): empty the log
 * (@keep) or put the saved bytes back; frees *@undo and clears it.
 * Context: mount, before any transaction.  Return: nothing.
 */
void ufs_journal_replay_end(struct ufs_journal *j, struct ufs_journal_undo **undo, bool keep);

/*
 * ufs_tx_begin() - open the one transaction of this mount.  Asserts that
 * the log is empty and the device writable.
 * Context: may sleep on the journal mutex, held until ufs_tx_commit() or
 * ufs_tx_abort(); never with a pin wait pending (break_layouts first).
 * Return: the transaction (never NULL).
 */
struct ufs_tx *ufs_tx_begin(struct ufs_journal *j);
/*
 * ufs_tx_add() - log the old bytes of [ptr, ptr + len) (inside the device
 * mapping) before the caller changes them.  Ranges already logged in this
 * transaction are not logged twice.
 * Context: inside @tx.
 * Return: 0, -ENOSPC (log full: the caller must abort and retry with a
 * smaller step), -EINVAL (outside the device or the metadata area).
 */
int ufs_tx_add(struct ufs_tx *tx, void *ptr, size_t len);
/* ufs_tx_room() - Context: inside @tx.  Return: bytes left in the log for it. */
size_t ufs_tx_room(const struct ufs_tx *tx);
/*
 * ufs_tx_commit() - make every logged range durable, then empty the log;
 * the hooks' end(committed) runs.  @tx is gone afterwards.
 * Context: inside @tx; releases the journal mutex.  Return: nothing.
 */
void ufs_tx_commit(struct ufs_tx *tx);
/*
 * ufs_tx_abort() - restore every logged range from the log, then empty
 * it; the hooks' restored() and end(aborted) run.  @tx is gone afterwards.
 * Context: inside @tx; releases the journal mutex.  Return: nothing.
 */
void ufs_tx_abort(struct ufs_tx *tx);

/* ufs_tx_journal() - Context: inside @tx.  Return: the journal @tx belongs to. */
struct ufs_journal *ufs_tx_journal(struct ufs_tx *tx);

/*
 * Hooks for DRAM state that mirrors journaled media (the allocator's free
 * counts, an inode cache): called with the journal mutex held, at the end
 * of every transaction.  restored() is called for each range an abort
 * rolled back (after all of them were restored); end() once per
 * transaction, after commit or abort.  Neither may start a transaction.
 * Hooks may be added from inside a transaction (the allocator registers
 * itself on the first transaction it sees).
 * ufs_journal_add_hooks() - add @h with @arg.
 * Context: takes the hook lock (not the journal mutex).
 * Return: 0, -ENOSPC (too many hooks: 8 at most).
 * ufs_journal_remove_hooks() - remove the pair @h, @arg (absent: nothing).
 * Context: takes the hook lock; not from inside a hook.  Return: nothing.
 */
struct ufs_tx_hooks {
	void (*restored)(void *arg, uint64_t dev_off, uint64_t len);
	void (*end)(void *arg, bool committed);
};
int ufs_journal_add_hooks(struct ufs_journal *j, const struct ufs_tx_hooks *h, void *arg);
void ufs_journal_remove_hooks(struct ufs_journal *j, const struct ufs_tx_hooks *h, void *arg);

/*
 * ufs_journal_commits() - transactions committed or aborted since open
 * (statistics, tests).  Context: any.  Return: the count.
 */
uint64_t ufs_journal_commits(const struct ufs_journal *j);

#endif /* UDAX_JOURNAL_H */
