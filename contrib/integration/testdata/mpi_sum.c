/* A small MPI computation for contrib/integration/mpi_test.go: steps of a deterministic update
 * of an array, reduced with MPI_Allreduce each step, one line per step, a checksum at the end.
 * Usage: mpi_sum STEPS DELAY_MS */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 100000

int
main(int argc, char **argv)
{
  int steps = argc > 1 ? atoi(argv[1]) : 20;
  long delay_ms = argc > 2 ? atol(argv[2]) : 500;
  static uint64_t a[N];
  int rank, size;

  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  for (int i = 0; i < N; i++) {
    a[i] = (uint64_t)i * 2654435761u + (uint64_t)rank;
  }
  uint64_t total = 0;
  for (int s = 1; s <= steps; s++) {
    uint64_t local = 0, sum = 0;
    for (int i = 0; i < N; i++) {
      a[i] = a[i] * 6364136223846793005u + 1442695040888963407u;
      local ^= a[i] >> 7;
    }
    MPI_Allreduce(&local, &sum, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
    total = total * 31 + sum;
    if (rank == 0) {
      printf("step %d %016llx\n", s, (unsigned long long)sum);
      fflush(stdout);
    }
    struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
  }
  if (rank == 0) {
    printf("result %d ranks %d steps %016llx\n", size, steps, (unsigned long long)total);
  }
  MPI_Finalize();
  return 0;
}
