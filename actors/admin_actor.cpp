#include "actors/admin_actor.hpp"

#include <algorithm>
#include <memory>

#include "format/segment.hpp"

namespace hearth {
namespace {

using self_ptr = admin_actor::stateful_pointer<admin_state>;
constexpr auto ask_timeout = std::chrono::seconds(60);

// Asks every partition (of `tenant`, or all when "") for its catalog; calls `done` with the
// snapshots by (tenant, shard), or with an error when the ingester does not answer. A partition
// that does not answer is left out: an operator still sees the rest.
template <class Done>
void with_catalogs(self_ptr self, std::string tenant, Done done) {
  self->request(self->state.ingester, ask_timeout, list_atom::value)
      .then(
          [self, tenant, done](std::vector<partition_actor>& parts) mutable {
            struct gather {
              size_t pending = 0;
              std::vector<catalog_snapshot> cats;
              Done done;
            };
            auto g = std::make_shared<gather>(gather{parts.size(), {}, std::move(done)});
            auto finish = [g] {
              std::sort(g->cats.begin(), g->cats.end(), [](const auto& a, const auto& b) {
                return std::tie(a.tenant, a.shard) < std::tie(b.tenant, b.shard);
              });
              g->done(status{}, std::move(g->cats));
            };
            if (parts.empty()) return finish();
            for (auto& p : parts)
              self->request(p, ask_timeout, catalog_atom::value)
                  .then(
                      [g, tenant, finish](catalog_snapshot& c) {
                        if (tenant.empty() || c.tenant == tenant) g->cats.push_back(std::move(c));
                        if (--g->pending == 0) finish();
                      },
                      [g, finish](caf::error&) {
                        if (--g->pending == 0) finish();
                      });
          },
          [done](caf::error& e) mutable {
            done(status{error{errc::unavailable, "ingester did not list partitions: " + caf::to_string(e)}},
                 std::vector<catalog_snapshot>{});
          });
}

block_detail detail_of(const catalog_snapshot& c, const block_entry& b) {
  block_detail d;
  d.tenant = c.tenant;
  d.shard = c.shard;
  d.entry = b;
  return d;
}

void apply_info(block_detail& d, const segment_info& info) {
  d.series = info.series;
  d.codec = static_cast<uint8_t>(info.codec);
  d.version = info.version;
}

// The blocks with their footers read (a file whose footer is unreadable keeps its catalog entry).
std::vector<block_detail> list_blocks(io::file_system& fs, const std::vector<catalog_snapshot>& cats) {
  std::vector<block_detail> out;
  for (const auto& c : cats) {
    std::vector<block_entry> blocks = c.blocks;
    std::sort(blocks.begin(), blocks.end(), [](const auto& a, const auto& b) {
      return std::tie(a.min_time_ns, a.id) < std::tie(b.min_time_ns, b.id);
    });
    for (const auto& b : blocks) {
      auto d = detail_of(c, b);
      if (auto bytes = fs.read_file(b.path))
        if (auto info = read_segment_info(as_bytes(*bytes))) apply_info(d, *info);
      out.push_back(std::move(d));
    }
  }
  return out;
}

}  // namespace

admin_actor::behavior_type admin_fn(self_ptr self, ingester_actor ingester, io::file_system* fs) {
  self->state.ingester = std::move(ingester);
  self->state.fs = fs;
  return {
      [self](list_atom, std::string tenant) {
        auto rp = self->make_response_promise<block_listing>();
        with_catalogs(self, tenant, [self, rp](status st, std::vector<catalog_snapshot> cats) mutable -> void {
          block_listing r;
          if (!st) r.status = reply_status::from(st.err());
          else r.blocks = list_blocks(*self->state.fs, cats);
          rp.deliver(std::move(r));
        });
        return rp;
      },
      [self](inspect_atom, std::string tenant, uint64_t id) {
        auto rp = self->make_response_promise<block_inspection>();
        with_catalogs(self, tenant, [self, rp, tenant, id](status st,
                                                          std::vector<catalog_snapshot> cats) mutable -> void {
          block_inspection r;
          if (!st) {
            r.status = reply_status::from(st.err());
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          const catalog_snapshot* cat = nullptr;
          const block_entry* found = nullptr;
          for (const auto& c : cats)
            for (const auto& b : c.blocks)
              if (b.id == id && !found) {
                cat = &c;
                found = &b;
              }
          if (!found) {
            r.status = reply_status::from(error{
                errc::not_found, "no block " + std::to_string(id) +
                                     (tenant.empty() ? std::string() : " in tenant " + quote_untrusted(tenant))});
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          r.block = detail_of(*cat, *found);
          auto bytes = self->state.fs->read_file(found->path);
          if (!bytes) {
            r.status = reply_status::from(bytes.err());
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          segment_info info;
          auto secs = read_segment_sections(as_bytes(*bytes), &info);
          if (!secs) {
            error e = secs.err();
            e.message = found->path + ": " + e.message;
            r.status = reply_status::from(e);
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          apply_info(r.block, info);
          r.stacks = info.stacks;
          for (const auto& s : *secs)
            r.sections.push_back(section_detail{s.name, s.offset, s.stored_bytes, s.raw_bytes,
                                                static_cast<uint8_t>(s.codec), s.crc, s.crc_ok});
          rp.deliver(std::move(r));
        });
        return rp;
      },
      [self](verify_atom, std::string tenant) {
        auto rp = self->make_response_promise<verify_report>();
        with_catalogs(self, tenant, [self, rp](status st, std::vector<catalog_snapshot> cats) mutable -> void {
          verify_report r;
          if (!st) {
            r.status = reply_status::from(st.err());
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          for (const auto& c : cats)
            for (const auto& b : c.blocks) {
              block_check chk;
              chk.block = detail_of(c, b);
              auto bytes = self->state.fs->read_file(b.path);
              if (!bytes) {
                chk.outcome = reply_status::from(bytes.err());
              } else {
                segment_info info;
                // The full decode checks every section's CRC and every cross reference.
                auto decoded = decode_segment(as_bytes(*bytes), &info);
                if (decoded) apply_info(chk.block, info);
                else chk.outcome = reply_status::from(decoded.err());
              }
              ++r.checked;
              if (!chk.outcome.ok()) ++r.corrupted;
              r.results.push_back(std::move(chk));
            }
          rp.deliver(std::move(r));
        });
        return rp;
      },
      [self](stats_atom, std::string tenant) {
        auto rp = self->make_response_promise<tenant_stats_reply>();
        with_catalogs(self, tenant, [self, rp](status st, std::vector<catalog_snapshot> cats) mutable -> void {
          tenant_stats_reply r;
          if (!st) {
            r.status = reply_status::from(st.err());
            {
            rp.deliver(std::move(r));
            return;
          }
          }
          auto blocks = list_blocks(*self->state.fs, cats);
          for (const auto& c : cats) {
            if (r.tenants.empty() || r.tenants.back().tenant != c.tenant)
              r.tenants.push_back(tenant_stat{c.tenant});
            ++r.tenants.back().partitions;
          }
          for (const auto& b : blocks) {
            auto it = std::find_if(r.tenants.begin(), r.tenants.end(),
                                   [&](const tenant_stat& t) { return t.tenant == b.tenant; });
            auto& t = *it;  // every block's tenant has a catalog above
            // Rollups repeat their raw block's data: they count as bytes, not as profiles.
            bool raw = b.entry.rollup_step_ns == 0;
            t.blocks += 1;
            t.bytes += b.entry.bytes;
            if (!raw) continue;
            t.series += b.series;
            t.profiles += b.entry.profiles;
            t.samples += b.entry.samples;
            if (b.entry.profiles == 0) continue;
            if (t.min_time_ns == 0 || b.entry.min_time_ns < t.min_time_ns) t.min_time_ns = b.entry.min_time_ns;
            t.max_time_ns = std::max(t.max_time_ns, b.entry.max_time_ns);
          }
          rp.deliver(std::move(r));
        });
        return rp;
      },
  };
}

}  // namespace hearth
