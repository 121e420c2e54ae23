#include "actors/reader_actor.hpp"

#include "actors/metrics.hpp"

namespace hearth {

namespace {

query_partial evaluate_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec,
                               bool* rollup_missing, std::shared_ptr<const block_data>* raw_block) {
  query_partial out;
  auto ev = query::evaluator::make(spec);
  if (!ev) {
    out.status = reply_status::from(ev.err());
    return out;
  }
  auto raw = store.get(ref.path, !query::reads_samples(spec));
  if (raw.what == block_store::outcome::missing) {
    out.status = reply_status::from(
        error{errc::unavailable, "segment " + ref.path +
                                     " was compacted or expired while the query ran; retry"});
    return out;
  }
  if (ev->kind() == query::query_kind::analyze) ev->note_block(ref.bytes);
  if (raw.what == block_store::outcome::ok) {
    std::shared_ptr<const block_data> rolled;
    if (!ref.rollup_path.empty()) {
      auto r = store.get(ref.rollup_path);
      if (r.what == block_store::outcome::ok) rolled = std::move(r.block);
      else *rollup_missing = true;
    }
    if (rolled) {
      ev->add(*raw.block, spec.start_ns, ref.rollup_lo_ns);
      ev->add(*rolled, ref.rollup_lo_ns, ref.rollup_hi_ns);
      ev->add(*raw.block, ref.rollup_hi_ns, spec.end_ns);
    } else {
      ev->add(*raw.block);
    }
    *raw_block = std::move(raw.block);
  }
  out.data = std::move(*ev).finish();
  return out;
}

}  // namespace

query_partial read_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec,
                           const reader_cache& cache) {
  std::optional<std::string> key;
  if (cache.partials) {
    query::block_read r{ref.path, ref.min_time_ns, ref.max_time_ns, ref.rollup_path, ref.rollup_lo_ns,
                        ref.rollup_hi_ns};
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
  bool rollup_missing = false;
  std::shared_ptr<const block_data> block;
  query_partial out = evaluate_segment(store, ref, spec, &rollup_missing, &block);
  // Kept only when the evaluation is what the key says: a whole block (not a corrupted one), its
  // rollup read if one was named, and its times those the key was made with.
  if (key && out.status.ok() && block && !rollup_missing && block->min_time_ns == ref.min_time_ns &&
      block->max_time_ns == ref.max_time_ns) {
    cache.partials->put(*key, std::make_shared<const query::partial>(out.data));
    if (cache.metrics) cache.metrics->partial_cache_bytes.Set(static_cast<double>(cache.partials->bytes()));
  }
  return out;
}

reader_actor::behavior_type reader_fn(reader_actor::pointer, block_store* store, reader_cache cache) {
  return {
      [store, cache](read_atom, const segment_ref& ref, const query::query_spec& spec) {
        return read_segment(*store, ref, spec, cache);
      },
  };
}

}  // namespace hearth
