/*
 * scripts: the Lua slotd has Redis run. Each write of slotd's is whole or
 * nothing: Redis applies a MULTI/EXEC even when one of its commands fails (a
 * key of the wrong type), and does not undo a script that fails half way, so
 * every write checks, before it changes anything, that each key it touches
 * has the right type and that the intake's tail is still the one it was
 * computed against ({ns}:tail, the tail's version).
 *
 *   dispatch:    MULTI, LPUSH per destination, EVAL commit, EXEC
 *                commit trims the intake, or pops the pushes back off
 *   membership:  EVAL apply: checks, then the change's commands
 *
 * Both bump {ns}:tail when they commit, and commit only when it holds the
 * version they expect, so a write computed from a stale view of the tail (a
 * second transaction behind a refused one, another slotd) changes nothing.
 */
#ifndef SLOTD_SCRIPTS_H
#define SLOTD_SCRIPTS_H

#include <stddef.h>
#include <stdint.h>

/*
 * The tail's version and the fence, in one key: {ns}:tail holds "<epoch>
 * <version>", the leader epoch (lease.h) of the slotd that wrote last and
 * the intake tail's version. Every write of slotd's that takes tasks off
 * the intake's tail or puts some back expects the value it read, with its
 * own epoch, and sets the next; taking the lease (acquire, step_down)
 * rewrites the epoch in it. So one comparison refuses both a write computed
 * from a stale view of the tail and a write of a slotd that lost the lease.
 *
 * The last command of a dispatch transaction, after its pushes.
 * KEYS: intake, tail, moves per epoch, then each destination pushed to, in
 * push order.
 * ARGV: tasks in the batch, the tail value expected ("" for none), the
 * value to set, then how many tasks were pushed to each destination.
 * Answers 1 when it committed: the intake trimmed of exactly the batch, the
 * batch counted under its epoch, the tail's value set. Otherwise it has
 * popped every push back off its list (the pushes sit at the lists' heads,
 * and nothing runs between them and the script) and answers why:
 * {"wrongtype", key, type}, {"short", key, length} (the intake lost tasks
 * since the peek) or {"moved", key, value} (the tail moved: another write
 * came first, or another slotd took the lease).
 */
extern const char scripts_commit[];

/*
 * A value of {ns}:tail, "<epoch> <version>": its version (the last field;
 * 0 for an empty value) and whether its epoch is `token`. 0, or -1 when it
 * does not end in a version number.
 */
int scripts_tail_parse(const char *v, size_t len, const char *token, uint64_t *version,
                       int *ours) __attribute__((warn_unused_result));

/* "<token> <version>" into buf (cap at least SCRIPTS_TAIL_MAX). */
#define SCRIPTS_TAIL_MAX 96
char *scripts_tail_format(char *buf, size_t cap, const char *token, uint64_t version);

/*
 * A membership change as one guarded script.
 * KEYS: tail, (unused), then every key the commands write (declared for
 * Redis Cluster).
 * ARGV: the tail value expected, the value to set; the number of checks c;
 * c pairs (key,
 * type), where the type is "list", "hash", "set", "string" or "int" (a
 * string holding an integer) and a missing key always passes; then the
 * commands, each as its word count then its words. Two words are not Redis
 * commands: "MOVEALL src dst" moves every task of src, head first, onto
 * dst's tail (so src's oldest ends nearest dst's tail) and answers the count;
 * "TRY" before a command runs it without failing the script (for a counter
 * whose loss is harmless).
 * Answers {"ok", the tail value set, {each command's reply}}, or, having
 * written nothing, {"wrongtype", key, type} or {"moved", key, value}.
 * It may run over maxmemory: a change moves tasks, it does not add any,
 * and a failover must not wait for memory.
 */
extern const char scripts_apply[];

/*
 * The lease (lease.h). KEYS: {ns}:leader, {ns}:leader:epoch, and for
 * acquire {ns}:leader:moves and {ns}:tail, for step_down {ns}:tail. The lease holds "<epoch> <who>" with a TTL; the
 * epoch key "<n> <nonce>" (no TTL) is the fencing token.
 *
 * acquire (ARGV who, lease_ms, nonce): when nobody holds the lease, takes
 * it under a new epoch: {"won", epoch}; else {"held", lease, pttl, epoch}.
 * renew (ARGV epoch, who, lease_ms): while the epoch is still ours, sets
 * the lease again (even if it lapsed meanwhile: nobody took it):
 * {"renewed"}; else {"lost", epoch, lease, pttl}.
 * release (ARGV epoch): deletes the lease if the epoch is ours: 1, else 0.
 * step_down: a new epoch with nobody holding the lease, so that the active
 * slotd's next write and renewal are refused: {"stepped", old epoch}.
 */
extern const char scripts_acquire[];
extern const char scripts_renew[];
extern const char scripts_release[];
extern const char scripts_step_down[];

/*
 * slotctl dead requeue: the dead letter at KEYS[2]'s tail off it, and its
 * task (ARGV[1]) onto the intake's head (KEYS[1]), or, when either is not a
 * list, nothing ({"wrongtype", key, type}). Answers 1.
 */
extern const char scripts_requeue[];

/*
 * Forwarding, between the shards of a namespace (forward.h): tasks that
 * reached shard i's intake but belong to shard j wait in {ns#i}:forward:<j>
 * (dispatch moves them there like any destination) and go to shard j's
 * intake, oldest first, exactly once though the two keys may be on two
 * nodes, slotd may stop between the two writes, either node may fail over
 * and lose its last writes, and a slotd that lost its lease may still
 * forward for a moment. Every task of the list has an offset: the count of
 * tasks forwarded before it. {ns#i}:forward:<j>:done holds the offset of
 * the list's oldest task (the tasks trimmed off so far), written in the
 * same script as the trim, so the two go back together if a failover loses
 * them; {ns#j}:forwarded holds, per source shard, the end offset of what
 * it took in. So a batch sent again, or by two slotds at once, or after
 * either side went back, is taken in only past what shard j already has.
 *
 * forward_peek, on shard i. KEYS: {ns#i}:forward:<j>, ...:done. ARGV: how
 * many. {offset of the oldest, the list's oldest tasks, newest first}, read
 * at one instant; or {"wrongtype", key, type}.
 *
 * forward_in, on shard j. KEYS: {ns#j}:intake, {ns#j}:forwarded. ARGV:
 * shard i, the batch's offset o, then its tasks, oldest first. LPUSHes the
 * tasks past the end e recorded for i (the first max(0, e - o) are already
 * there), so they come after everything already in the intake, in order;
 * records max(e, o + n). Answers how many it pushed; or {"wrongtype", key,
 * type}.
 *
 * forward_out, on shard i, once shard j took the batch in. KEYS:
 * {ns#i}:forward:<j>, ...:done, {ns#i}:tail. ARGV: the offset o, the
 * batch's size n, this slotd's leader epoch. If the epoch is still ours
 * (the fence: {ns}:tail begins with it) and the offset still o, trims the
 * batch off the list and sets the offset to o + n; else writes nothing and
 * answers {"moved", key, value}. 1, or {"wrongtype", key, type}.
 */
extern const char scripts_forward_peek[];
extern const char scripts_forward_in[];
extern const char scripts_forward_out[];

/*
 * The workers a check found registered without a heartbeat: KEYS are
 * {ns}:workers, then their heartbeat keys; ARGV their ids. For each, "left"
 * when it is no longer in the set (it deregistered after the check read
 * it), else its heartbeat key's type as TYPE says it ("none" when missing).
 */
extern const char scripts_missing[];

/*
 * The tails of a fenced worker's in-flight list and queue, read at one
 * instant: a task moving from one to the other cannot be missed by both.
 * KEYS: in-flight, queue. ARGV: how many tasks of each tail.
 */
extern const char scripts_scan[];

#endif
