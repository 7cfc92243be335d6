package io.spotserve.exec;

import io.spotserve.model.HalfFloats;
import io.spotserve.model.LlamaCheckpoint;
import io.spotserve.model.LlamaCheckpoint.Tensor;
import io.spotserve.model.LlamaConfig;
import java.nio.FloatBuffer;

/**
 * Test oracle: a line-by-line transliteration of llama2.c run.c's {@code forward()} for one sequence, with
 * no sharding, no batching, no threads and no cleverness, so that the real executor can be checked against
 * it. Slow by design.
 */
public final class ReferenceLlama {
    private final boolean fp16;
    private final LlamaConfig p;
    private final float[] tokenEmbedding;
    private final float[] rmsAtt;
    private final float[] wq;
    private final float[] wk;
    private final float[] wv;
    private final float[] wo;
    private final float[] rmsFfn;
    private final float[] w1;
    private final float[] w2;
    private final float[] w3;
    private final float[] rmsFinal;
    private final float[] wcls;
    // run state
    private final float[] x;
    private final float[] xb;
    private final float[] xb2;
    private final float[] hb;
    private final float[] hb2;
    private final float[] q;
    private final float[] att;
    private final float[] logits;
    private final float[] keyCache;
    private final float[] valueCache;

    public ReferenceLlama(LlamaCheckpoint ckpt) {
        this(ckpt, false);
    }

    /**
     * The reference on {@code ckpt}'s weights, each rounded to the nearest fp16 value when {@code fp16} (what an
     * executor with {@link WeightPrecision#FP16} computes with); arithmetic stays fp32.
     */
    public ReferenceLlama(LlamaCheckpoint ckpt, boolean fp16) {
        this.fp16 = fp16;
        p = ckpt.config();
        tokenEmbedding = all(ckpt.tensor(Tensor.TOKEN_EMBEDDING));
        rmsAtt = all(ckpt.tensor(Tensor.RMS_ATT));
        wq = all(ckpt.tensor(Tensor.WQ));
        wk = all(ckpt.tensor(Tensor.WK));
        wv = all(ckpt.tensor(Tensor.WV));
        wo = all(ckpt.tensor(Tensor.WO));
        rmsFfn = all(ckpt.tensor(Tensor.RMS_FFN));
        w1 = all(ckpt.tensor(Tensor.W1));
        w2 = all(ckpt.tensor(Tensor.W2));
        w3 = all(ckpt.tensor(Tensor.W3));
        rmsFinal = all(ckpt.tensor(Tensor.RMS_FINAL));
        wcls = all(ckpt.tensor(Tensor.CLASSIFIER));
        int kvDim = p.kvDim();
        x = new float[p.dim()];
        xb = new float[p.dim()];
        xb2 = new float[p.dim()];
        hb = new float[p.hiddenDim()];
        hb2 = new float[p.hiddenDim()];
        q = new float[p.dim()];
        att = new float[p.heads() * p.seqLen()];
        logits = new float[p.vocabSize()];
        keyCache = new float[p.layers() * p.seqLen() * kvDim];
        valueCache = new float[p.layers() * p.seqLen() * kvDim];
    }

    private float[] all(FloatBuffer b) {
        float[] a = new float[b.remaining()];
        b.get(a);
        if (fp16) {
            HalfFloats.round(a);
        }
        return a;
    }

    static void rmsnorm(float[] o, float[] x, float[] weight, int wOff, int size) {
        float ss = 0.0f;
        for (int j = 0; j < size; j++) {
            ss += x[j] * x[j];
        }
        ss /= size;
        ss += 1e-5f;
        ss = 1.0f / (float) Math.sqrt(ss);
        for (int j = 0; j < size; j++) {
            o[j] = weight[wOff + j] * (ss * x[j]);
        }
    }

    static void softmax(float[] x, int off, int size) {
        float max = x[off];
        for (int i = 1; i < size; i++) {
            if (x[off + i] > max) {
                max = x[off + i];
            }
        }
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            x[off + i] = (float) Math.exp(x[off + i] - max);
            sum += x[off + i];
        }
        for (int i = 0; i < size; i++) {
            x[off + i] /= sum;
        }
    }

    /** W (d,n) @ x (n,) -> xout (d,), W at offset wOff. */
    static void matmul(float[] xout, int xoutOff, float[] x, float[] w, int wOff, int n, int d) {
        for (int i = 0; i < d; i++) {
            float val = 0.0f;
            for (int j = 0; j < n; j++) {
                val += w[wOff + i * n + j] * x[j];
            }
            xout[xoutOff + i] = val;
        }
    }

    /** run.c forward(transformer, token, pos): returns the logits (a shared buffer; copy it). */
    public float[] forward(int token, int pos) {
        int dim = p.dim();
        int kvDim = p.kvDim();
        int kvMul = p.heads() / p.kvHeads();
        int hiddenDim = p.hiddenDim();
        int headSize = dim / p.heads();
        int seqLen = p.seqLen();

        System.arraycopy(tokenEmbedding, token * dim, x, 0, dim);

        for (int l = 0; l < p.layers(); l++) {
            rmsnorm(xb, x, rmsAtt, l * dim, dim);

            int loff = l * seqLen * kvDim;
            float[] k = new float[kvDim];
            float[] v = new float[kvDim];
            matmul(q, 0, xb, wq, l * dim * dim, dim, dim);
            matmul(k, 0, xb, wk, l * dim * kvDim, dim, kvDim);
            matmul(v, 0, xb, wv, l * dim * kvDim, dim, kvDim);

            for (int i = 0; i < dim; i += 2) {
                int headDim = i % headSize;
                float freq = 1.0f / (float) Math.pow(10000.0f, headDim / (float) headSize);
                float val = pos * freq;
                float fcr = (float) Math.cos(val);
                float fci = (float) Math.sin(val);
                int rotn = i < kvDim ? 2 : 1;
                for (int vi = 0; vi < rotn; vi++) {
                    float[] vec = vi == 0 ? q : k;
                    float v0 = vec[i];
                    float v1 = vec[i + 1];
                    vec[i] = v0 * fcr - v1 * fci;
                    vec[i + 1] = v0 * fci + v1 * fcr;
                }
            }
            System.arraycopy(k, 0, keyCache, loff + pos * kvDim, kvDim);
            System.arraycopy(v, 0, valueCache, loff + pos * kvDim, kvDim);

            for (int h = 0; h < p.heads(); h++) {
                int qo = h * headSize;
                int ao = h * seqLen;
                for (int t = 0; t <= pos; t++) {
                    int ko = loff + t * kvDim + (h / kvMul) * headSize;
                    float score = 0.0f;
                    for (int i = 0; i < headSize; i++) {
                        score += q[qo + i] * keyCache[ko + i];
                    }
                    score /= (float) Math.sqrt(headSize);
                    att[ao + t] = score;
                }
                softmax(att, ao, pos + 1);
                int xo = h * headSize;
                for (int i = 0; i < headSize; i++) {
                    xb[xo + i] = 0f;
                }
                for (int t = 0; t <= pos; t++) {
                    int vo = loff + t * kvDim + (h / kvMul) * headSize;
                    float a = att[ao + t];
                    for (int i = 0; i < headSize; i++) {
                        xb[xo + i] += a * valueCache[vo + i];
                    }
                }
            }
            matmul(xb2, 0, xb, wo, l * dim * dim, dim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb2[i];
            }

            rmsnorm(xb, x, rmsFfn, l * dim, dim);
            matmul(hb, 0, xb, w1, l * dim * hiddenDim, dim, hiddenDim);
            matmul(hb2, 0, xb, w3, l * dim * hiddenDim, dim, hiddenDim);
            for (int i = 0; i < hiddenDim; i++) {
                float val = hb[i];
                val *= (1.0f / (1.0f + (float) Math.exp(-val)));
                val *= hb2[i];
                hb[i] = val;
            }
            matmul(xb, 0, hb, w2, l * dim * hiddenDim, hiddenDim, dim);
            for (int i = 0; i < dim; i++) {
                x[i] += xb[i];
            }
        }
        rmsnorm(x, x, rmsFinal, 0, dim);
        matmul(logits, 0, x, wcls, 0, dim, p.vocabSize());
        return logits;
    }

    /** Index of the largest logit, first one on ties (run.c sample_argmax). */
    public static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** run.c greedy generation: position 0 is {@code first}, then feed back argmax; returns the generated ids. */
    public int[] greedy(int first, int steps) {
        int[] out = new int[steps];
        int token = first;
        for (int pos = 0; pos < steps; pos++) {
            token = argmax(forward(token, pos));
            out[pos] = token;
        }
        return out;
    }
}
