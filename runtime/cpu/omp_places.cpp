// The OpenMP places' CPUs (omp_places.h).
#include "runtime/cpu/omp_places.h"

#include <omp.h>
#include <sched.h>

#include <vector>

namespace weft::cpu {

bool unbindFromFirstPlace() {
  const int places = omp_get_num_places();
  if (places <= 0) return false;
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  for (int place = 0; place < places; ++place) {
    std::vector<int> ids(static_cast<size_t>(omp_get_place_num_procs(place)));
    omp_get_place_proc_ids(place, ids.data());
    for (int id : ids)
      if (id >= 0 && id < CPU_SETSIZE) CPU_SET(id, &cpus);
  }
  return CPU_COUNT(&cpus) > 0 && sched_setaffinity(0, sizeof cpus, &cpus) == 0;
}

}  // namespace weft::cpu
