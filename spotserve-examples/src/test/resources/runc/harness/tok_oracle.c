#define TESTING
#include "run.c"
// usage: tok_oracle tok.bin vocab cases.hex  -> for each line (hex utf8), prints "hex\tids(bos=1,eos=0)\tids(bos=0,eos=1)"
static int unhex(const char* h, char* out) { int n=0; while (h[0] && h[1] && h[0]!='\n') { unsigned v; sscanf(h, "%2x", &v); out[n++]=(char)v; h+=2; } out[n]=0; return n; }
int main(int argc, char** argv) {
    Tokenizer t; build_tokenizer(&t, argv[1], atoi(argv[2]));
    if (strcmp(argv[3], "decode") == 0) {
        // for prev in {0,1,2,35,259} and every token: hex(decode) \t hex(safe_printf output)
        int prevs[] = {0, 1, 2, 35, 259, 410};
        for (int pi = 0; pi < 6; pi++) for (int tok = 0; tok < t.vocab_size; tok++) {
            char* piece = decode(&t, prevs[pi], tok);
            printf("%d\t%d\t", prevs[pi], tok);
            for (char* c = piece; *c; c++) printf("%02x", (unsigned char)*c);
            printf("\t");
            char* buf = NULL; size_t len = 0; FILE* saved = stdout; fflush(stdout);
            stdout = open_memstream(&buf, &len); safe_printf(piece); fclose(stdout); stdout = saved;
            for (size_t i = 0; i < len; i++) printf("%02x", (unsigned char)buf[i]);
            printf("\n"); free(buf);
        }
        return 0;
    }
    FILE* f = fopen(argv[3], "r"); char line[100000]; char text[50000]; int tokens[50010]; int n;
    while (fgets(line, sizeof line, f)) {
        unhex(line, text);
        line[strcspn(line, "\n")] = 0;
        printf("%s\t", line);
        encode(&t, text, 1, 0, tokens, &n);
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", tokens[i]);
        printf("\t");
        encode(&t, text, 0, 1, tokens, &n);
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", tokens[i]);
        printf("\n");
    }
    return 0;
}
