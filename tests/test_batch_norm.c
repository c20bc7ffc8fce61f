/* norm.batch2d: batch statistics over the time-folded batch and pixels against a double
 * reference, the running statistics (PyTorch's momentum rule, unbiased variance), evaluation on
 * the running statistics, backward against finite differences, PyTorch's names. */
#include "layer_check.h"

/* y from x [rows, C, HW] with the batch statistics; mean and biased var per channel out. */
static void ref_bn(int rows, int C, int HW, const float *x, const float *g, const float *b,
                   double eps, float *y, double *mean, double *var)
{
    for (int c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < HW; p++)
                s += x[(r * C + c) * HW + p];
        mean[c] = s / (rows * HW);
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < HW; p++) {
                double d = x[(r * C + c) * HW + p] - mean[c];
                q += d * d;
            }
        var[c] = q / (rows * HW);
        for (int r = 0; r < rows; r++)
            for (int p = 0; p < HW; p++) {
                const int i = (r * C + c) * HW + p;
                y[i] = (float)(g[c] * (x[i] - mean[c]) / sqrt(var[c] + eps) + b[c]);
            }
    }
}

static void check_forward(spk_shape in, int time, int T, int B)
{
    lc t;
    in.time = time;
    lc_new(&t, "norm.batch2d", "{momentum: 0.25}", in, T, B, 1);
    const int C = in.dims[0], HW = spk_shape_size(&in) / C;
    const int rows = B * (time == SPK_TIME_STEPS ? T : 1);
    cr_assert_eq(t.li->layer.out.time, time);
    /* channels with different offsets and scales, and learnt-looking gamma and beta */
    const size_t n = t.li->in[0].numel;
    float *x = malloc(n * sizeof(float));
    spk_test_fill(x, n, -1.0f, 1.0f, 5);
    for (size_t i = 0; i < n; i++) {
        const int c = (int)(i / HW) % C;
        x[i] = x[i] * (0.5f + (float)c) + 3.0f * (float)c;
    }
    lc_set(&t, &t.li->in[0], x);
    float g[16], b[16];
    for (int c = 0; c < C; c++)
        g[c] = 0.5f + 0.25f * (float)c, b[c] = 0.1f * (float)c - 0.3f;
    lc_set(&t, &lc_weight(&t, "weight")->value, g);
    lc_set(&t, &lc_weight(&t, "bias")->value, b);
    lc_fwd(&t);
    float *y = lc_fetch(&t, &t.li->out), *want = malloc(n * sizeof(float));
    double mean[16], var[16];
    ref_bn(rows, C, HW, x, g, b, 1e-5, want, mean, var);
    double e = spk_test_nerr(y, want, n);
    /* float32 sums of up to ~1000 values: ~1e-6 relative */
    cr_expect_leq(e, 2e-5, "C %d HW %d time %d: forward differs by %g", C, HW, time, e);
    float *rm = lc_fetch(&t, &lc_weight(&t, "running_mean")->value);
    float *rv = lc_fetch(&t, &lc_weight(&t, "running_var")->value);
    const double N = (double)rows * HW;
    for (int c = 0; c < C; c++) {
        const double wm = 0.25 * mean[c], wv = 0.75 + 0.25 * var[c] * N / (N - 1);
        cr_expect(fabs(rm[c] - wm) <= 1e-5 * (1 + fabs(wm)), "running_mean[%d] %g, want %g", c,
                  rm[c], wm);
        cr_expect(fabs(rv[c] - wv) <= 1e-5 * (1 + fabs(wv)), "running_var[%d] %g, want %g", c,
                  rv[c], wv);
    }
    free(x), free(y), free(want), free(rm), free(rv);
    lc_free(&t);
}

Test(batch_norm, forward_and_running_statistics)
{
    check_forward(lc_shape(0, 3, 3, 5, 7), SPK_TIME_STEPS, 4, 3);
    check_forward(lc_shape(0, 3, 1, 1, 1), SPK_TIME_STEPS, 2, 3);
    check_forward(lc_shape(0, 3, 4, 6, 5), SPK_TIME_CONST, 4, 5);
    check_forward(lc_shape(0, 1, 9, 0, 0), SPK_TIME_STEPS, 3, 7);
}

/* Evaluation normalises with the running statistics, not the batch's. */
Test(batch_norm, eval_uses_running_statistics)
{
    lc t;
    lc_new(&t, "norm.batch2d", "{eps: 0.01}", lc_shape(SPK_TIME_STEPS, 3, 2, 3, 3), 2, 2, 1);
    const float rm[2] = {0.5f, -2.0f}, rv[2] = {4.0f, 0.25f}, g[2] = {2.0f, -1.0f},
                b[2] = {0.1f, 0.2f};
    lc_set(&t, &lc_weight(&t, "running_mean")->value, rm);
    lc_set(&t, &lc_weight(&t, "running_var")->value, rv);
    lc_set(&t, &lc_weight(&t, "weight")->value, g);
    lc_set(&t, &lc_weight(&t, "bias")->value, b);
    lc_fill(&t, &t.li->in[0], -3.0f, 3.0f, 2);
    cr_assert_eq(spk_layer_inst_forward(t.li, 0, &t.err), SPK_OK, "%s", t.err.msg);
    float *x = lc_fetch(&t, &t.li->in[0]), *y = lc_fetch(&t, &t.li->out);
    for (size_t i = 0; i < t.li->out.numel; i++) {
        const int c = (int)(i / 9) % 2;
        const double want = g[c] * (x[i] - rm[c]) / sqrt(rv[c] + 0.01) + b[c];
        cr_expect(fabs(y[i] - want) <= 1e-5 * (1 + fabs(want)), "[%zu] %g, want %g", i, y[i], want);
    }
    float *rm2 = lc_fetch(&t, &lc_weight(&t, "running_mean")->value);
    cr_expect(rm2[0] == rm[0] && rm2[1] == rm[1], "evaluation leaves the running mean alone");
    free(x), free(y), free(rm2);
    lc_free(&t);
}

/* Backward in training mode against central differences of sum(out * R): the batch statistics
 * depend on x, so a backward that treats them as constants is off by O(1/sqrt(n)) of the
 * gradient (~0.1 here). The layer is smooth: truncation O(eps^2) ~1e-4 at eps = 1e-2, float32
 * rounding of the objective ~1e-6 / 2e-2; 5e-3 bounds both. */
static void check_fd(spk_shape in, int time)
{
    lc t;
    in.time = time;
    lc_new(&t, "norm.batch2d", "{}", in, 3, 2, 1);
    lc_fill(&t, &t.li->in[0], -1.0f, 1.0f, 3);
    const int C = in.dims[0];
    float g[8], b[8];
    for (int c = 0; c < C; c++)
        g[c] = 0.7f + 0.3f * (float)c, b[c] = 0.2f * (float)c;
    lc_set(&t, &lc_weight(&t, "weight")->value, g);
    lc_set(&t, &lc_weight(&t, "bias")->value, b);
    float *R = malloc(t.li->out.numel * sizeof(float));
    spk_test_fill(R, t.li->out.numel, -1.0f, 1.0f, 9);
    lc_fwd(&t);
    lc_backward_with(&t, R);
    float *gin = lc_fetch(&t, &t.li->grad_in[0]);
    spk_weight *w = lc_weight(&t, "weight"), *bw = lc_weight(&t, "bias");
    float *gw = lc_fetch(&t, &w->grad), *gb = lc_fetch(&t, &bw->grad);
    double e = lc_fd_error(&t, &t.li->in[0], R, gin, 1e-2f);
    cr_expect_leq(e, 5e-3, "C %d time %d: grad_in error %g", C, time, e);
    e = lc_fd_error(&t, &w->value, R, gw, 1e-2f);
    cr_expect_leq(e, 5e-3, "C %d time %d: grad weight error %g", C, time, e);
    e = lc_fd_error(&t, &bw->value, R, gb, 1e-2f);
    cr_expect_leq(e, 5e-3, "C %d time %d: grad bias error %g", C, time, e);
    float *grm = lc_fetch(&t, &lc_weight(&t, "running_mean")->grad);
    for (int c = 0; c < C; c++)
        cr_expect_eq(grm[c], 0.0f, "running statistics get no gradient");
    free(R), free(gin), free(gw), free(gb), free(grm);
    lc_free(&t);
}

Test(batch_norm, backward_matches_finite_differences)
{
    check_fd(lc_shape(0, 3, 2, 3, 5), SPK_TIME_STEPS);
    check_fd(lc_shape(0, 3, 3, 4, 3), SPK_TIME_CONST);
    check_fd(lc_shape(0, 1, 5, 0, 0), SPK_TIME_STEPS);
}

/* Checkpoint names and roles follow torch.nn.BatchNorm2d's state_dict. */
Test(batch_norm, torch_names_and_init)
{
    lc t;
    lc_new(&t, "norm.batch2d", "{}", lc_shape(SPK_TIME_STEPS, 3, 6, 4, 4), 2, 2, 1);
    const char *names[4] = {"weight", "bias", "running_mean", "running_var"};
    const float init[4] = {1, 0, 0, 1};
    const int frozen[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        spk_weight *w = lc_weight(&t, names[i]);
        cr_expect(w->shape.ndim == 1 && w->shape.dims[0] == 6, "%s shape", names[i]);
        cr_expect_eq(w->frozen, frozen[i], "%s frozen", names[i]);
        float *v = lc_fetch(&t, &w->value);
        for (int c = 0; c < 6; c++)
            cr_expect_eq(v[c], init[i], "%s[%d] starts at %g", names[i], c, v[c]);
        free(v);
    }
    lc_free(&t);
}

Test(batch_norm, init_errors)
{
    lc t;
    cr_expect_neq(lc_try(&t, "norm.batch2d", "{}", lc_shape(SPK_TIME_STEPS, 2, 3, 4, 0), 2, 2),
                  SPK_OK);
    cr_expect(strstr(t.err.msg, "[channels, height, width] or [channels]"), "%s", t.err.msg);
    lc_free(&t);
    cr_expect_neq(lc_try(&t, "norm.batch2d", "{}", lc_shape(SPK_TIME_NONE, 1, 4, 0, 0), 2, 2),
                  SPK_OK);
    lc_free(&t);
}

/* In a model: the running statistics move in training only, evaluation is deterministic
 * (dropout off, batch statistics unused), and a checkpoint carries them under torch's names so
 * another session evaluates identically. */
Test(batch_norm, session_checkpoint_and_eval)
{
    const char *yaml = "input: {shape: [2, 6, 6]}\n"
                       "time_steps: 3\n"
                       "seed: 2\n"
                       "layers:\n"
                       "  - {name: enc, type: encoder.direct}\n"
                       "  - {name: c1, type: synapse.conv2d, out: 4, kernel: 3, bias: false}\n"
                       "  - {name: bn, type: norm.batch2d}\n"
                       "  - {name: n1, type: neuron.lif, beta: 0.8, threshold: 0.5}\n"
                       "  - {name: drop, type: dropout, p: 0.3}\n"
                       "  - {name: fc, type: synapse.linear, out: 3}\n"
                       "  - {name: n2, type: neuron.lif, beta: 0.8, threshold: 0.5}\n"
                       "readout: {type: readout.spike_count}\n"
                       "loss: {type: loss.ce_count}\n"
                       "train: {batch: 4, optimizer: {type: adam, lr: 0.02}}\n";
    spk_error err = {0};
    spk_model *m;
    cr_assert_eq(spk_model_load_string(yaml, "bn.yaml", &m, &err), 0, "%s", err.msg);
    spk_backend *be;
    cr_assert_eq(spk_backend_cpu_new(1, &be, &err), 0);
    spk_session *s;
    cr_assert_eq(spk_session_new(m, be, 4, &s, &err), 0, "%s", err.msg);
    int wm = -1, wv = -1;
    for (int i = 0; i < spk_session_weight_count(s); i++) {
        if (strcmp(spk_session_weight_name(s, i), "bn.running_mean") == 0)
            wm = i;
        if (strcmp(spk_session_weight_name(s, i), "bn.running_var") == 0)
            wv = i;
    }
    cr_assert(wm >= 0 && wv >= 0, "bn.running_mean and bn.running_var are session weights");
    float x[4 * 72];
    spk_test_fill(x, 4 * 72, 0.0f, 1.0f, 4);
    int32_t y[4] = {0, 1, 2, 1};
    spk_batch_stats st = {0};
    float rm0[4], rm1[4], rm2[4];
    spk_session_weight_get(s, wm, rm0, &err);
    cr_assert_eq(spk_session_eval_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    spk_session_weight_get(s, wm, rm1, &err);
    cr_expect(memcmp(rm0, rm1, sizeof rm0) == 0, "evaluation moved the running mean");
    for (int i = 0; i < 20; i++)
        cr_assert_eq(spk_session_train_batch(s, x, y, 4, &st, &err), 0, "%s", err.msg);
    spk_session_weight_get(s, wm, rm2, &err);
    cr_expect(rm2[0] != 0.0f && rm2[3] != 0.0f, "training moves the running mean: %g %g", rm2[0],
              rm2[3]);
    spk_batch_stats e1 = {0}, e2 = {0};
    cr_assert_eq(spk_session_eval_batch(s, x, y, 4, &e1, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_eval_batch(s, x, y, 4, &e2, &err), 0, "%s", err.msg);
    cr_expect_eq(e1.loss_sum, e2.loss_sum, "evaluation is deterministic");
    char *path = spk_test_write("bn.safetensors", "");
    cr_assert_eq(spk_session_save(s, path, &err), 0, "%s", err.msg);
    spk_model_set_seed(m, 77);
    spk_session *s2;
    cr_assert_eq(spk_session_new(m, be, 4, &s2, &err), 0, "%s", err.msg);
    cr_assert_eq(spk_session_load(s2, path, &err), 0, "%s", err.msg);
    float rv[4], rv2[4];
    spk_session_weight_get(s, wv, rv, &err);
    spk_session_weight_get(s2, wv, rv2, &err);
    cr_expect(memcmp(rv, rv2, sizeof rv) == 0, "the checkpoint restores running_var");
    spk_batch_stats e3 = {0};
    cr_assert_eq(spk_session_eval_batch(s2, x, y, 4, &e3, &err), 0, "%s", err.msg);
    cr_expect_eq(e3.loss_sum, e1.loss_sum, "the reloaded session evaluates identically");
    free(path);
    spk_session_free(s2);
    spk_session_free(s);
    spk_backend_free(be);
    spk_model_free(m);
}
