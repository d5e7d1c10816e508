/* SPDX-License-Identifier: MIT */
/*
 * xarray.c - the radix tree behind every udaxfs page index.
 *
 * Shape.  A node has XA_CHUNK_SIZE slots and covers 2^(shift + XA_CHUNK_SHIFT)
 * indexes; slot i of a node covers 2^shift of them.  The root covers
 * [0, maxindex(root->shift)]; the tree grows upwards by putting the old root
 * in slot 0 of a new one and shrinks back when the root holds only slot 0.
 * An entry of order o lives in the node whose shift is o rounded down to a
 * multiple of XA_CHUNK_SHIFT, in 2^(o - shift) consecutive slots: the first
 * (canonical) holds the entry, the others a sibling entry naming it.
 *
 * Slot contents: NULL, a user entry, a node (its address | 2) or a sibling
 * (canonical offset << 2 | 2, always below 4096, so never a node address).
 *
 * Marks: bit i of node->marks[m] is set when slot i holds a marked entry
 * (canonical slots only) or a node with any bit of marks[m] set.
 *
 * Counts: node->count is the number of non-NULL slots, siblings included;
 * a node whose count drops to 0 is freed at once, so the tree never holds
 * empty nodes and an empty tree has no node at all (DRAM follows entries).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "xarray.h"

#ifndef XA_CHUNK_SHIFT
#define XA_CHUNK_SHIFT 6
#endif
#if XA_CHUNK_SHIFT < 1 || XA_CHUNK_SHIFT > 6
#error "XA_CHUNK_SHIFT must be 1..6 (marks are one word per node)"
#endif
#define XA_CHUNK_SIZE (1U << XA_CHUNK_SHIFT)
#define XA_CHUNK_MASK (XA_CHUNK_SIZE - 1)
#define XA_BITS ((unsigned int)(sizeof(unsigned long) * CHAR_BIT))
/* Nodes one store may need: growing the root to the top, then a new path down. */
#define XA_MAX_PATH (2 * (XA_BITS / XA_CHUNK_SHIFT + 2))

struct xa_node {
	unsigned char shift;		/* bits of index below each slot */
	unsigned char offset;		/* slot in parent */
	unsigned char count;		/* non-NULL slots, siblings included */
	unsigned char pad;
	struct xa_node *parent;		/* NULL for the root */
	void *slots[XA_CHUNK_SIZE];
	unsigned long marks[XA_MAX_MARKS];
};

/* ---- allocator (global, so tests can fail and count allocations) ---- */
static const struct xa_alloc_ops *xa_ops;
static long xa_live;		/* atomic */

void xa_set_alloc_ops(const struct xa_alloc_ops *ops)
{
	__atomic_store_n(&xa_ops, ops, __ATOMIC_RELEASE);
}

long xa_nodes_live(void)
{
	return __atomic_load_n(&xa_live, __ATOMIC_RELAXED);
}

size_t xa_node_size(void)
{
	return sizeof(struct xa_node);
}

unsigned int xa_chunk_shift(void)
{
	return XA_CHUNK_SHIFT;
}

static struct xa_node *xa_node_alloc(bool may_block)
{
	const struct xa_alloc_ops *ops = __atomic_load_n(&xa_ops, __ATOMIC_ACQUIRE);
	struct xa_node *n;

	n = ops ? ops->alloc(sizeof(*n), may_block, ops->arg) : malloc(sizeof(*n));
	if (n) {
		memset(n, 0, sizeof(*n));
		__atomic_add_fetch(&xa_live, 1, __ATOMIC_RELAXED);
	}
	return n;
}

static void xa_node_free(struct xa_node *n)
{
	const struct xa_alloc_ops *ops = __atomic_load_n(&xa_ops, __ATOMIC_ACQUIRE);

	__atomic_sub_fetch(&xa_live, 1, __ATOMIC_RELAXED);
	if (ops)
		ops->free(n, sizeof(*n), ops->arg);
	else
		free(n);
}

/* Nodes allocated for one operation before the tree is touched. */
struct xa_reserve {
	struct xa_node *n[XA_MAX_PATH];
	unsigned int nr;
};

/*
 * Make sure @r holds @need nodes.  Context: xa->lock held; may drop it.
 * Return: 0 (lock never dropped), -EAGAIN (lock was dropped and retaken:
 * re-evaluate), -ENOMEM (lock was dropped and retaken too).
 */
static int xa_reserve_fill(struct xarray *xa, struct xa_reserve *r, unsigned int need)
{
	int err = -EAGAIN;

	UDAX_BUG_ON(need > XA_MAX_PATH);
	while (r->nr < need) {
		struct xa_node *n = xa_node_alloc(false);

		if (!n)
			break;
		r->n[r->nr++] = n;
	}
	if (r->nr >= need)
		return 0;
	xa_unlock(xa);
	while (r->nr < need) {
		struct xa_node *n = xa_node_alloc(true);

		if (!n) {
			err = -ENOMEM;
			break;
		}
		r->n[r->nr++] = n;
	}
	xa_lock(xa);
	return err;
}

static struct xa_node *xa_reserve_take(struct xarray *xa, struct xa_reserve *r)
{
	UDAX_BUG_ON(r->nr == 0);
	xa->nr_nodes++;
	return r->n[--r->nr];
}

static void xa_reserve_release(struct xa_reserve *r)
{
	while (r->nr)
		xa_node_free(r->n[--r->nr]);
}

/* ---- slot encoding ---- */
static inline bool xa_is_node(const void *e)
{
	return xa_is_internal(e) && (unsigned long)e > 4096;
}
static inline struct xa_node *xa_to_node(const void *e)
{
	return (struct xa_node *)((unsigned long)e - 2);
}
static inline void *xa_mk_node(const struct xa_node *n)
{
	return (void *)((unsigned long)n | 2);
}
static inline bool xa_is_sibling(const void *e)
{
	return xa_is_internal(e) && (unsigned long)e < 4096;
}
static inline unsigned int xa_sibling_offset(const void *e)
{
	return (unsigned int)((unsigned long)e >> 2);
}
static inline void *xa_mk_sibling(unsigned int off)
{
	return (void *)(((unsigned long)off << 2) | 2);
}

/* Last index a node of this shift covers (from its own first index). */
static inline unsigned long xa_span_mask(unsigned int shift)
{
	return shift + XA_CHUNK_SHIFT >= XA_BITS ? ~0UL :
		(1UL << (shift + XA_CHUNK_SHIFT)) - 1;
}

/* Smallest multiple of the chunk shift, >= @s, whose node covers @last. */
static unsigned int xa_top_shift(unsigned long last, unsigned int s)
{
	unsigned int rs = s;

	while (xa_span_mask(rs) < last)
		rs += XA_CHUNK_SHIFT;
	return rs;
}

static inline unsigned int xa_leaf_shift(unsigned int order)
{
	return order - order % XA_CHUNK_SHIFT;
}

static inline unsigned long xa_order_mask(unsigned int order)
{
	return order >= XA_BITS ? ~0UL : (1UL << order) - 1;
}

/* First index covered by slot @off of @node (given any index inside node). */
static inline unsigned long xa_slot_index(const struct xa_node *node, unsigned long index,
					  unsigned int off)
{
	return (index & ~xa_span_mask(node->shift)) + ((unsigned long)off << node->shift);
}

/* Number of slots the entry at canonical @off spans. */
static unsigned int xa_entry_slots(const struct xa_node *node, unsigned int off)
{
	unsigned int n = 1;

	while (off + n < XA_CHUNK_SIZE && node->slots[off + n] == xa_mk_sibling(off))
		n++;
	return n;
}

static unsigned int xa_entry_order(const struct xa_node *node, unsigned int off)
{
	unsigned int n = xa_entry_slots(node, off), o = node->shift;

	while (n > 1) {
		n >>= 1;
		o++;
	}
	return o;
}

/* ---- marks ---- */
static inline bool xa_mark_test(const struct xa_node *n, unsigned int off, xa_mark_t m)
{
	return n->marks[m] & (1UL << off);
}

static void xa_mark_set_up(struct xa_node *node, unsigned int off, xa_mark_t m)
{
	while (node) {
		if (node->marks[m] & (1UL << off))
			return;
		node->marks[m] |= 1UL << off;
		off = node->offset;
		node = node->parent;
	}
}

static void xa_mark_clear_up(struct xa_node *node, unsigned int off, xa_mark_t m)
{
	while (node) {
		if (!(node->marks[m] & (1UL << off)))
			return;
		node->marks[m] &= ~(1UL << off);
		if (node->marks[m])
			return;
		off = node->offset;
		node = node->parent;
	}
}

/* ---- lifetime ---- */
void xa_init(struct xarray *xa)
{
	pthread_mutex_init(&xa->lock, NULL);
	xa->lockp = &xa->lock;
	xa->head = NULL;
	xa->nr_nodes = 0;
	xa->node_gen = 0;
}

void xa_init_shared(struct xarray *xa, struct xarray *owner)
{
	xa_init(xa);
	xa->lockp = owner->lockp;
}

static void xa_free_subtree(struct xa_node *node)
{
	unsigned int i;

	for (i = 0; i < XA_CHUNK_SIZE; i++)
		if (xa_is_node(node->slots[i]))
			xa_free_subtree(xa_to_node(node->slots[i]));
	xa_node_free(node);
}

void xa_destroy(struct xarray *xa)
{
	xa_lock(xa);
	if (xa->head)
		xa_free_subtree(xa->head);
	xa->head = NULL;
	xa->nr_nodes = 0;
	xa->node_gen++;
	xa_unlock(xa);
	pthread_mutex_destroy(&xa->lock);
}

size_t xa_mem_bytes(struct xarray *xa)
{
	size_t b;

	xa_lock(xa);
	b = xa->nr_nodes * sizeof(struct xa_node);
	xa_unlock(xa);
	return b;
}

/* ---- lookup ---- */

/*
 * Walk to the entry covering @index.  Return: the entry (NULL if none) and,
 * when an entry is found, its node and canonical offset.
 */
static void *xa_descend(const struct xarray *xa, unsigned long index,
			struct xa_node **nodep, unsigned int *offp)
{
	struct xa_node *node = xa->head;

	if (!node || index > xa_span_mask(node->shift))
		return NULL;
	for (;;) {
		unsigned int off = (index >> node->shift) & XA_CHUNK_MASK;
		void *e = node->slots[off];

		if (xa_is_sibling(e)) {
			off = xa_sibling_offset(e);
			e = node->slots[off];
		}
		if (xa_is_node(e)) {
			node = xa_to_node(e);
			continue;
		}
		if (e) {
			*nodep = node;
			*offp = off;
		}
		return e;
	}
}

void *__xa_load(const struct xarray *xa, unsigned long index)
{
	struct xa_node *node;
	unsigned int off;

	return xa_descend(xa, index, &node, &off);
}

void *__xa_load_extent(const struct xarray *xa, unsigned long index,
		       unsigned long *firstp, unsigned int *orderp)
{
	struct xa_node *node;
	unsigned int off;
	void *e = xa_descend(xa, index, &node, &off);

	if (e) {
		*firstp = xa_slot_index(node, index, off);
		*orderp = xa_entry_order(node, off);
	}
	return e;
}

void *xa_load(struct xarray *xa, unsigned long index)
{
	void *e;

	xa_lock(xa);
	e = __xa_load(xa, index);
	xa_unlock(xa);
	return e;
}

unsigned int xa_get_order(struct xarray *xa, unsigned long index)
{
	unsigned long first;
	unsigned int order = 0;

	xa_lock(xa);
	__xa_load_extent(xa, index, &first, &order);
	xa_unlock(xa);
	return order;
}

/* ---- removal ---- */

/* Free empty nodes from @node upwards, then shrink the root. */
static void xa_trim(struct xarray *xa, struct xa_node *node)
{
	while (node && node->count == 0) {
		struct xa_node *parent = node->parent;
		xa_mark_t m;

		if (parent) {
			parent->slots[node->offset] = NULL;
			parent->count--;
			for (m = 0; m < XA_MAX_MARKS; m++)
				xa_mark_clear_up(parent, node->offset, m);
		} else {
			xa->head = NULL;
		}
		xa_node_free(node);
		xa->nr_nodes--;
		xa->node_gen++;
		node = parent;
	}
	/* Shrink: a root holding only a child in slot 0 is one level too tall. */
	while ((node = xa->head) && node->count == 1 && xa_is_node(node->slots[0])) {
		struct xa_node *child = xa_to_node(node->slots[0]);

		child->parent = NULL;
		child->offset = 0;
		xa->head = child;
		xa_node_free(node);
		xa->nr_nodes--;
		xa->node_gen++;
	}
}

/* Remove the entry at canonical slot @off of @node.  Return: it. */
static void *xa_delete_entry(struct xarray *xa, struct xa_node *node, unsigned int off)
{
	unsigned int i, n = xa_entry_slots(node, off);
	void *old = node->slots[off];
	xa_mark_t m;

	for (m = 0; m < XA_MAX_MARKS; m++)
		xa_mark_clear_up(node, off, m);
	for (i = 0; i < n; i++)
		node->slots[off + i] = NULL;
	node->count -= n;
	xa_trim(xa, node);
	return old;
}

void *__xa_erase(struct xarray *xa, unsigned long index)
{
	struct xa_node *node;
	unsigned int off;

	if (!xa_descend(xa, index, &node, &off))
		return NULL;
	return xa_delete_entry(xa, node, off);
}

void *xa_erase(struct xarray *xa, unsigned long index)
{
	void *e;

	xa_lock(xa);
	e = __xa_erase(xa, index);
	xa_unlock(xa);
	return e;
}

/* ---- search ---- */

/*
 * Core search: the first entry matching @filter covering an index in
 * [start, max].  Return: the entry, and its node/canonical offset/first index.
 */
static void *xa_find_node(const struct xarray *xa, unsigned long start, unsigned long max,
			  xa_mark_t filter, struct xa_node **nodep, unsigned int *offp,
			  unsigned long *firstp)
{
	struct xa_node *node = xa->head;
	unsigned long index = start;
	bool any = filter >= XA_MAX_MARKS;
	unsigned int off;
	void *e;

	if (!node || start > max || start > xa_span_mask(node->shift))
		return NULL;
	for (;;) {
		off = (index >> node->shift) & XA_CHUNK_MASK;
		e = node->slots[off];

		/* The slot containing @index: an entry may start before it. */
		if (xa_is_sibling(e))
			off = xa_sibling_offset(e);
		e = node->slots[off];
		if (e && (any || xa_mark_test(node, off, filter))) {
			if (xa_is_node(e)) {
				node = xa_to_node(e);
				continue;
			}
			goto found;
		}
		/* Scan the rest of this node. */
		for (off++; off < XA_CHUNK_SIZE; off++) {
			e = node->slots[off];
			if (!e || xa_is_sibling(e))
				continue;
			if (!any && !xa_mark_test(node, off, filter))
				continue;
			index = xa_slot_index(node, index, off);
			if (index > max)
				return NULL;
			if (xa_is_node(e)) {
				node = xa_to_node(e);
				break;
			}
			goto found;
		}
		if (off < XA_CHUNK_SIZE)
			continue;	/* descended */
		/*
		 * Nothing left in this node: start again from the root just
		 * after it (the parent may be exhausted too; one descent is
		 * cheaper than working out which ancestor is not).
		 */
		if (xa_span_mask(node->shift) == ~0UL)
			return NULL;
		index = (index | xa_span_mask(node->shift)) + 1;
		node = xa->head;
		if (index == 0 || index > max || index > xa_span_mask(node->shift))
			return NULL;
	}
found:
	*nodep = node;
	*offp = off;
	*firstp = xa_slot_index(node, index, off);
	return e;
}

void *__xa_find(const struct xarray *xa, unsigned long *indexp, unsigned long max,
		xa_mark_t filter, unsigned int *orderp)
{
	struct xa_node *node;
	unsigned int off;
	unsigned long first;
	void *e = xa_find_node(xa, *indexp, max, filter, &node, &off, &first);

	if (e) {
		*indexp = first;
		if (orderp)
			*orderp = xa_entry_order(node, off);
	}
	return e;
}

void *xa_find(struct xarray *xa, unsigned long *indexp, unsigned long max, xa_mark_t filter)
{
	void *e;

	xa_lock(xa);
	e = __xa_find(xa, indexp, max, filter, NULL);
	xa_unlock(xa);
	return e;
}

void *xa_find_after(struct xarray *xa, unsigned long *indexp, unsigned long max,
		    xa_mark_t filter)
{
	unsigned long first, next;
	unsigned int order = 0;
	void *e = NULL;

	xa_lock(xa);
	next = *indexp + 1;
	if (__xa_load_extent(xa, *indexp, &first, &order))
		next = first + xa_order_mask(order) + 1;
	if (next > *indexp) {
		e = __xa_find(xa, &next, max, filter, NULL);
		if (e)
			*indexp = next;
	}
	xa_unlock(xa);
	return e;
}

void xa_cursor_init(struct xa_cursor *c, struct xarray *xa, unsigned long start,
		    unsigned long max, xa_mark_t filter)
{
	c->xa = xa;
	c->next = start;
	c->max = max;
	c->index = 0;
	c->order = 0;
	c->filter = filter;
	c->done = start > max;
	c->node = NULL;
	c->gen = 0;
}

/* Record the entry found at @node/@off (first index @first). */
static void *xa_cursor_found(struct xa_cursor *c, struct xa_node *node, unsigned int off,
			     unsigned long first, void *e)
{
	unsigned long end;

	c->index = first;
	c->order = xa_entry_order(node, off);
	c->node = node;
	c->gen = c->xa->node_gen;
	end = first + xa_order_mask(c->order);
	if (end >= c->max || end == ~0UL)
		c->done = true;
	else
		c->next = end + 1;
	return e;
}

/*
 * Step along the cached leaf.  Return: the next entry, NULL at the end of
 * the walk (c->done set), or XA_CURSOR_SLOW when a descent is needed.
 */
#define XA_CURSOR_SLOW ((void *)(uintptr_t)6)
static void *xa_cursor_step(struct xa_cursor *c)
{
	struct xa_node *node = c->node;
	unsigned long span = xa_span_mask(node->shift);
	bool any = c->filter >= XA_MAX_MARKS;
	unsigned int off;

	if ((c->next & ~span) != (c->index & ~span))
		return XA_CURSOR_SLOW;		/* next is past this leaf */
	off = (c->next >> node->shift) & XA_CHUNK_MASK;
	if (xa_is_sibling(node->slots[off]))
		return XA_CURSOR_SLOW;		/* something new covers next */
	for (; off < XA_CHUNK_SIZE; off++) {
		void *e = node->slots[off];
		unsigned long first;

		if (!e || xa_is_sibling(e))
			continue;
		if (xa_is_node(e))
			return XA_CURSOR_SLOW;
		if (!any && !xa_mark_test(node, off, c->filter))
			continue;
		first = xa_slot_index(node, c->index, off);
		if (first > c->max) {
			c->done = true;
			return NULL;
		}
		return xa_cursor_found(c, node, off, first, e);
	}
	/* End of this leaf: continue after it. */
	if (span == ~0UL || (c->index | span) >= c->max) {
		c->done = true;
		return NULL;
	}
	c->next = (c->index | span) + 1;
	return XA_CURSOR_SLOW;
}

void *__xa_cursor_next(struct xa_cursor *c)
{
	struct xa_node *node;
	unsigned long first;
	unsigned int off;
	void *e;

	if (c->done)
		return NULL;
	if (c->node && c->gen == c->xa->node_gen) {
		e = xa_cursor_step(c);
		if (e != XA_CURSOR_SLOW)
			return e;
	}
	e = xa_find_node(c->xa, c->next, c->max, c->filter, &node, &off, &first);
	if (!e) {
		c->done = true;
		c->node = NULL;
		return NULL;
	}
	return xa_cursor_found(c, node, off, first, e);
}

void *__xa_cursor_erase(struct xa_cursor *c)
{
	struct xa_node *node = c->node;
	unsigned int off;

	if (!node || c->gen != c->xa->node_gen)
		return __xa_erase(c->xa, c->index);
	off = (c->index >> node->shift) & XA_CHUNK_MASK;
	UDAX_BUG_ON(!node->slots[off] || xa_is_internal(node->slots[off]));
	return xa_delete_entry(c->xa, node, off);
}

/* ---- marks (public) ---- */
void __xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	struct xa_node *node;
	unsigned int off;

	if (mark < XA_MAX_MARKS && xa_descend(xa, index, &node, &off))
		xa_mark_set_up(node, off, mark);
}

void __xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	struct xa_node *node;
	unsigned int off;

	if (mark < XA_MAX_MARKS && xa_descend(xa, index, &node, &off))
		xa_mark_clear_up(node, off, mark);
}

bool __xa_get_mark(const struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	struct xa_node *node;
	unsigned int off;

	return mark < XA_MAX_MARKS && xa_descend(xa, index, &node, &off) &&
		xa_mark_test(node, off, mark);
}

void xa_set_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	xa_lock(xa);
	__xa_set_mark(xa, index, mark);
	xa_unlock(xa);
}

void xa_clear_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	xa_lock(xa);
	__xa_clear_mark(xa, index, mark);
	xa_unlock(xa);
}

bool xa_get_mark(struct xarray *xa, unsigned long index, xa_mark_t mark)
{
	bool r;

	xa_lock(xa);
	r = __xa_get_mark(xa, index, mark);
	xa_unlock(xa);
	return r;
}

/* ---- store ---- */

/*
 * Count the nodes a store of [base, base + 2^order) needs, without changing
 * anything.  Return: that count, or -EEXIST if an entry of another extent
 * overlaps (an exact-extent entry is fine: it gets replaced).
 */
static int xa_store_check(const struct xarray *xa, unsigned long base, unsigned int order)
{
	unsigned int s = xa_leaf_shift(order), off, n, i, l, top;
	unsigned long last = base + xa_order_mask(order);
	struct xa_node *node = xa->head;
	int need;
	void *e;

	if (!node)
		return (xa_top_shift(last, s) - s) / XA_CHUNK_SHIFT + 1;
	top = dx_max(node->shift, xa_top_shift(last, s));
	need = (top - node->shift) / XA_CHUNK_SHIFT;
	/* Levels that growth would add above the root: old root is in slot 0. */
	for (l = top; l > node->shift; l -= XA_CHUNK_SHIFT) {
		off = (base >> l) & XA_CHUNK_MASK;
		if (off != 0)
			return need + (int)((l - s) / XA_CHUNK_SHIFT);
		if (l == s)
			return -EEXIST;	/* our extent would include the old root */
	}
	while (node->shift > s) {
		off = (base >> node->shift) & XA_CHUNK_MASK;
		e = node->slots[off];
		if (!e)
			return need + (int)((node->shift - s) / XA_CHUNK_SHIFT);
		if (!xa_is_node(e))
			return -EEXIST;	/* a bigger entry covers our extent */
		node = xa_to_node(e);
	}
	off = (base >> s) & XA_CHUNK_MASK;
	n = 1U << (order - s);
	e = node->slots[off];
	if (!e) {
		for (i = 1; i < n; i++)
			if (node->slots[off + i])
				return -EEXIST;
		return need;
	}
	if (xa_is_internal(e))
		return -EEXIST;		/* inside a bigger entry, or over smaller ones */
	for (i = 1; i < n; i++)
		if (node->slots[off + i] != xa_mk_sibling(off))
			return -EEXIST;
	if (off + n < XA_CHUNK_SIZE && node->slots[off + n] == xa_mk_sibling(off))
		return -EEXIST;		/* a bigger entry starting here */
	return need;
}

/* The most nodes an insert of this extent can need, whatever is in the tree. */
static int xa_store_worst(const struct xarray *xa, unsigned long base, unsigned int order)
{
	unsigned int s = xa_leaf_shift(order);
	unsigned int top = xa_top_shift(base + xa_order_mask(order), s);

	if (xa->head)
		top = dx_max(top, xa->head->shift);
	/*
	 * Erasing may shrink the root; the insert may then grow it back to
	 * @top and build a new path below the level where it diverges.
	 */
	return 2 * ((top - s) / XA_CHUNK_SHIFT + 1);
}

/*
 * Put @entry over the extent; xa_store_check() said it fits and @r holds
 * enough nodes.  Return: the exact-extent entry replaced, or NULL.
 */
static void *xa_store_apply(struct xarray *xa, unsigned long base, unsigned int order,
			    void *entry, struct xa_reserve *r)
{
	unsigned int s = xa_leaf_shift(order), off, n, i;
	unsigned long last = base + xa_order_mask(order);
	struct xa_node *node, *child;
	void *old;
	xa_mark_t m;

	if (!xa->head) {
		node = xa_reserve_take(xa, r);
		node->shift = (unsigned char)xa_top_shift(last, s);
		xa->head = node;
	}
	while (xa->head->shift < s || xa_span_mask(xa->head->shift) < last) {
		child = xa->head;
		node = xa_reserve_take(xa, r);
		node->shift = child->shift + XA_CHUNK_SHIFT;
		node->slots[0] = xa_mk_node(child);
		node->count = 1;
		for (m = 0; m < XA_MAX_MARKS; m++)
			if (child->marks[m])
				node->marks[m] = 1;
		child->parent = node;
		child->offset = 0;
		xa->head = node;
	}
	node = xa->head;
	while (node->shift > s) {
		off = (base >> node->shift) & XA_CHUNK_MASK;
		if (!node->slots[off]) {
			child = xa_reserve_take(xa, r);
			child->shift = node->shift - XA_CHUNK_SHIFT;
			child->parent = node;
			child->offset = (unsigned char)off;
			node->slots[off] = xa_mk_node(child);
			node->count++;
		}
		UDAX_BUG_ON(!xa_is_node(node->slots[off]));
		node = xa_to_node(node->slots[off]);
	}
	off = (base >> s) & XA_CHUNK_MASK;
	n = 1U << (order - s);
	old = node->slots[off];
	node->slots[off] = entry;
	if (!old) {
		for (i = 1; i < n; i++)
			node->slots[off + i] = xa_mk_sibling(off);
		node->count += n;
	}
	return old;
}

static void *xa_store_locked(struct xarray *xa, unsigned long index, unsigned int order,
			     void *entry, unsigned int flags, bool insert_only)
{
	struct xa_reserve r = { .nr = 0 };
	unsigned long base;
	void *old;
	int need, err;

	if (order >= XA_BITS - 1 || xa_is_internal(entry))
		return xa_mk_err(-EINVAL);
	if (!entry)
		return insert_only ? xa_mk_err(-EINVAL) : __xa_erase(xa, index);
	base = index & ~xa_order_mask(order);
	for (;;) {
		if (flags & XA_STORE_REPLACE)
			need = xa_store_worst(xa, base, order);
		else
			need = xa_store_check(xa, base, order);
		if (need < 0) {
			old = xa_mk_err(need);
			break;
		}
		if (insert_only && __xa_load(xa, base)) {
			old = xa_mk_err(-EEXIST);
			break;
		}
		err = xa_reserve_fill(xa, &r, (unsigned int)need);
		if (err == -EAGAIN)
			continue;	/* the lock was dropped: look again */
		if (err) {
			old = xa_mk_err(err);
			break;
		}
		old = NULL;
		if (flags & XA_STORE_REPLACE) {
			struct xa_node *node;
			unsigned int off;
			unsigned long first;
			void *e;

			old = __xa_load(xa, index);
			while ((e = xa_find_node(xa, base, base + xa_order_mask(order), XA_PRESENT,
						 &node, &off, &first)))
				xa_delete_entry(xa, node, off);
			xa_store_apply(xa, base, order, entry, &r);
		} else {
			old = xa_store_apply(xa, base, order, entry, &r);
		}
		break;
	}
	xa_reserve_release(&r);
	return old;
}

void *__xa_store_order(struct xarray *xa, unsigned long index, unsigned int order,
		       void *entry, unsigned int flags)
{
	return xa_store_locked(xa, index, order, entry, flags, false);
}

void *xa_store_order(struct xarray *xa, unsigned long index, unsigned int order,
		     void *entry, unsigned int flags)
{
	void *old;

	xa_lock(xa);
	old = __xa_store_order(xa, index, order, entry, flags);
	xa_unlock(xa);
	return old;
}

int __xa_insert_order(struct xarray *xa, unsigned long index, unsigned int order, void *entry)
{
	void *old = xa_store_locked(xa, index, order, entry, 0, true);

	if (xa_is_err(old))
		return xa_err(old);
	UDAX_BUG_ON(old != NULL);
	return 0;
}

int xa_insert_order(struct xarray *xa, unsigned long index, unsigned int order, void *entry)
{
	int r;

	xa_lock(xa);
	r = __xa_insert_order(xa, index, order, entry);
	xa_unlock(xa);
	return r;
}

void *__xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry)
{
	unsigned long first = index;
	unsigned int order = 0;
	void *cur, *r;

	if (xa_is_internal(entry))
		return xa_mk_err(-EINVAL);
	for (;;) {
		cur = __xa_load_extent(xa, index, &first, &order);
		if (cur != old || cur == entry)
			return cur;
		if (!entry)
			return __xa_erase(xa, index);
		if (!cur) {
			/* Insert: may drop the lock, so re-check on -EEXIST. */
			int err = __xa_insert_order(xa, index, 0, entry);

			if (err == -EEXIST)
				continue;
			return err ? xa_mk_err(err) : NULL;
		}
		/* Same extent replacement needs no memory: cannot drop the lock. */
		r = xa_store_locked(xa, first, order, entry, 0, false);
		UDAX_BUG_ON(r != cur);
		return cur;
	}
}

void *xa_cmpxchg(struct xarray *xa, unsigned long index, void *old, void *entry)
{
	void *r;

	xa_lock(xa);
	r = __xa_cmpxchg(xa, index, old, entry);
	xa_unlock(xa);
	return r;
}
