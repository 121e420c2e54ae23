#include "actors/reader_actor.hpp"

#include <span>

#include "actors/metrics.hpp"

namespace hearth {

namespace {

// Adds one segment file to `ev`, through its rollup when the partition named one: the rollup
// answers the buckets [rollup_lo_ns, rollup_hi_ns) and the raw block the query's rows outside
// them. When the raw block has no row the query reads outside those buckets (its footer's time
// range says so), the rollup answers alone and the raw block is not read at all: a 24 h flame
// graph over a day's L2 block reads only its 1 h rollup. `*whole` is set when the answer is the
// whole file's as the partial cache keys it (nothing missing, the raw block's times those of
// `ref`). Fails (unavailable) when the file is gone.
reply_status add_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec,
                         query::evaluator& ev, bool* whole) {
  *whole = false;
  if (ev.kind() == query::query_kind::analyze) ev.note_block(ref.bytes);
  // A flame graph reads a block through its frame map (kept with the cached block).
  const bool stacks = ev.kind() == query::query_kind::merge_stacks;
  auto frames = [&](const std::string& path, const std::shared_ptr<const block_data>& b) {
    return stacks ? store.frames(path, b) : nullptr;
  };
  // Only the pairs of the series the query reads are decoded (a block holds every profile type
  // of its services; a query reads one).
  const series_filter reads = [&ev](const block_data& b) { return ev.series_read(b); };
  std::shared_ptr<const block_data> rolled;
  if (!ref.rollup_path.empty()) {
    auto r = store.get(ref.rollup_path, query::block_depth::whole, reads);
    if (r.what == block_store::outcome::ok) rolled = std::move(r.block);
  }
  if (rolled &&
      !query::raw_rows_outside(spec, query::rollup_choice{0, ref.rollup_lo_ns, ref.rollup_hi_ns},
                               ref.min_time_ns, ref.max_time_ns)) {
    ev.add(*rolled, ref.rollup_lo_ns, ref.rollup_hi_ns, frames(ref.rollup_path, rolled));
    *whole = true;
    return {};
  }
  // With a rollup, the raw block answers only the rows outside its buckets and less than a step
  // from them: only their pairs are decoded (a day's block for a range that starts mid-hour:
  // ~300 of 11,000 rows, wherever in the day the range starts).
  std::string raw_key = ref.path;
  auto raw = rolled ? store.get_outside(ref.path, ref.rollup_lo_ns, ref.rollup_hi_ns,
                                        ref.rollup_step_ns, &raw_key)
                    : store.get(ref.path, query::depth_needed(spec), reads);
  if (raw.what == block_store::outcome::missing)
    return reply_status::from(
        error{errc::unavailable,
              "segment " + ref.path + " was compacted or expired while the query ran; retry"});
  if (raw.what == block_store::outcome::ok) {
    auto raw_frames = frames(raw_key, raw.block);
    if (rolled) {
      ev.add(*raw.block, spec.start_ns, ref.rollup_lo_ns, raw_frames);
      ev.add(*rolled, ref.rollup_lo_ns, ref.rollup_hi_ns, frames(ref.rollup_path, rolled));
      ev.add(*raw.block, ref.rollup_hi_ns, spec.end_ns, raw_frames);
    } else {
      ev.add(*raw.block, raw_frames);
    }
    *whole = (rolled || ref.rollup_path.empty()) && raw.block->min_time_ns == ref.min_time_ns &&
             raw.block->max_time_ns == ref.max_time_ns;
  }
  return {};
}

// The partial of `spec` over the files `refs`, one evaluator for all of them.
query_partial evaluate_segments(block_store& store, std::span<const segment_ref> refs,
                                const query::query_spec& spec, bool* whole) {
  query_partial out;
  auto ev = query::evaluator::make(spec);
  if (!ev) {
    out.status = reply_status::from(ev.err());
    return out;
  }
  for (const segment_ref& ref : refs) {
    out.status = add_segment(store, ref, spec, *ev, whole);
    if (!out.status.ok()) return out;
  }
  out.data = std::move(*ev).finish();
  return out;
}

}  // namespace

query_partial read_segment(block_store& store, const segment_ref& ref,
                           const query::query_spec& spec, const reader_cache& cache) {
  std::optional<std::string> key;
  if (cache.partials) {
    query::block_read r{ref.path,        ref.min_time_ns,  ref.max_time_ns,
                        ref.rollup_path, ref.rollup_lo_ns, ref.rollup_hi_ns};
    key = query::partial_cache_key(spec, r);
  }
  if (key) {
    if (auto hit = cache.partials->get(*key)) {
      if (cache.metrics) cache.metrics->partial_cache_hits.Increment();
      query_partial out;
      out.data = *hit;
      return out;
    }
    if (cache.metrics) cache.metrics->partial_cache_misses.Increment();
  }
  bool whole = false;
  query_partial out = evaluate_segments(store, std::span<const segment_ref>(&ref, 1), spec, &whole);
  if (key && out.status.ok() && whole) {
    cache.partials->put(*key, std::make_shared<const query::partial>(out.data));
    if (cache.metrics)
      cache.metrics->partial_cache_bytes.Set(static_cast<double>(cache.partials->bytes()));
  }
  return out;
}

query_partial read_segments(block_store& store, const std::vector<segment_ref>& refs,
                            const query::query_spec& spec) {
  bool whole = false;
  return evaluate_segments(store, refs, spec, &whole);
}

reader_actor::behavior_type reader_fn(reader_actor::pointer, block_store* store,
                                      reader_cache cache) {
  return {
      [store, cache](read_atom, const segment_ref& ref, const query::query_spec& spec) {
        return read_segment(*store, ref, spec, cache);
      },
      [store](read_atom, const std::vector<segment_ref>& refs, const query::query_spec& spec) {
        return read_segments(*store, refs, spec);
      },
  };
}

}  // namespace hearth
