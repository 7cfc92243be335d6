#define TESTING
#include "run.c"
int main(int argc, char** argv) {
    unsigned long long s = strtoull(argv[1], 0, 10);
    for (int i = 0; i < 8; i++) { unsigned long long before = s; unsigned int u = random_u32(&s); printf("%u %llu\n", u, s); }
    s = strtoull(argv[1], 0, 10);
    for (int i = 0; i < 8; i++) { float f = random_f32(&s); printf("%.9g %a\n", f, f); }
    return 0;
}
