#include "actors/reader_actor.hpp"

namespace hearth {

query_partial read_segment(block_store& store, const segment_ref& ref, const query::query_spec& spec) {
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
    }
    if (rolled) {
      ev->add(*raw.block, spec.start_ns, ref.rollup_lo_ns);
      ev->add(*rolled, ref.rollup_lo_ns, ref.rollup_hi_ns);
      ev->add(*raw.block, ref.rollup_hi_ns, spec.end_ns);
    } else {
      ev->add(*raw.block);
    }
  }
  out.data = std::move(*ev).finish();
  return out;
}

reader_actor::behavior_type reader_fn(reader_actor::pointer, block_store* store) {
  return {
      [store](read_atom, const segment_ref& ref, const query::query_spec& spec) {
        return read_segment(*store, ref, spec);
      },
  };
}

}  // namespace hearth
