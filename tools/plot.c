/* spikecl CLI — the run folder's pictures (plot.h), drawn with cairo's image surfaces and its
 * toy text API: no X server, no font files of our own (fontconfig's "sans"). */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include <cairo.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* One colour scheme for every picture: Okabe & Ito's palette, readable with colour-blindness
 * (Okabe, Ito, "Color Universal Design", 2008). */
static const double pal[][3] = {
    {0.000, 0.447, 0.698}, /* blue: train, the true class */
    {0.835, 0.369, 0.000}, /* vermilion: test, a wrong prediction */
    {0.000, 0.620, 0.451}, /* bluish green */
    {0.800, 0.475, 0.655}, /* reddish purple */
    {0.902, 0.624, 0.000}, /* orange */
    {0.337, 0.706, 0.914}, /* sky blue */
};
#define N_PAL ((int)(sizeof pal / sizeof pal[0]))

static void rgb(cairo_t *cr, int i)
{
    cairo_set_source_rgb(cr, pal[i % N_PAL][0], pal[i % N_PAL][1], pal[i % N_PAL][2]);
}

static void grey(cairo_t *cr, double v)
{
    cairo_set_source_rgb(cr, v, v, v);
}

/* Text at (x, y) aligned by ax (0 left, 0.5 centre, 1 right) and ay (0 top, 0.5 middle, 1
 * baseline-ish bottom), rotated by angle. */
static void text(cairo_t *cr, double x, double y, double ax, double ay, double size, int bold,
                 double angle, const char *s)
{
    cairo_select_font_face(cr, "sans", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, angle);
    cairo_move_to(cr, -ax * e.x_advance, ay * size * 0.75);
    cairo_show_text(cr, s);
    cairo_restore(cr);
}

/* A plot area in pixels and the data range it shows. */
typedef struct frame {
    double x0, y0, w, h;
    double xmin, xmax, ymin, ymax;
    int xint; /* the x axis counts steps: ticks on whole numbers */
} frame;

static double fx(const frame *f, double x)
{
    return f->x0 + (x - f->xmin) / (f->xmax - f->xmin) * f->w;
}

static double fy(const frame *f, double y)
{
    return f->y0 + f->h - (y - f->ymin) / (f->ymax - f->ymin) * f->h;
}

/* A tick step of 1, 2 or 5 times a power of ten giving about `want` ticks. */
static double tick_step(double range, int want)
{
    double raw = range / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void tick_label(char *buf, size_t n, double v, double step)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, n, "%.*f", dec, fabs(v) < step * 1e-6 ? 0.0 : v);
}

/* Grid, axes, ticks, labels and title of a frame. */
static void axes(cairo_t *cr, const frame *f, const char *xlabel, const char *ylabel,
                 const char *title, double fs)
{
    char buf[32];
    cairo_set_line_width(cr, 1);
    double xs = tick_step(f->xmax - f->xmin, 6), ys = tick_step(f->ymax - f->ymin, 5);
    if (f->xint && xs < 1)
        xs = 1;
    for (double v = ceil(f->xmin / xs - 1e-9) * xs; v <= f->xmax + 1e-9 * xs; v += xs) {
        double px = floor(fx(f, v)) + 0.5;
        grey(cr, 0.9);
        cairo_move_to(cr, px, f->y0);
        cairo_line_to(cr, px, f->y0 + f->h);
        cairo_stroke(cr);
        grey(cr, 0.2);
        tick_label(buf, sizeof buf, v, xs);
        text(cr, px, f->y0 + f->h + 6, 0.5, 1, fs, 0, 0, buf);
    }
    for (double v = ceil(f->ymin / ys - 1e-9) * ys; v <= f->ymax + 1e-9 * ys; v += ys) {
        double py = floor(fy(f, v)) + 0.5;
        grey(cr, 0.9);
        cairo_move_to(cr, f->x0, py);
        cairo_line_to(cr, f->x0 + f->w, py);
        cairo_stroke(cr);
        grey(cr, 0.2);
        tick_label(buf, sizeof buf, v, ys);
        text(cr, f->x0 - 6, py, 1, 0.5, fs, 0, 0, buf);
    }
    grey(cr, 0.2);
    cairo_rectangle(cr, floor(f->x0) + 0.5, floor(f->y0) + 0.5, floor(f->w), floor(f->h));
    cairo_stroke(cr);
    if (xlabel)
        text(cr, f->x0 + f->w / 2, f->y0 + f->h + 10 + 1.6 * fs, 0.5, 1, fs + 1, 0, 0, xlabel);
    if (ylabel)
        text(cr, f->x0 - 14 - 2.8 * fs, f->y0 + f->h / 2, 0.5, 0.5, fs + 1, 0, -PI / 2, ylabel);
    if (title)
        text(cr, f->x0 + f->w / 2, f->y0 - 10 - fs, 0.5, 0, fs + 2, 1, 0, title);
}

static cairo_t *canvas(int w, int h, cairo_surface_t **sf)
{
    *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(*sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    return cr;
}

static int finish(cairo_t *cr, cairo_surface_t *sf, const char *dir, const char *name,
                  spk_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS)
        st = cairo_surface_write_to_png(sf, path);
    cairo_surface_destroy(sf);
    if (st != CAIRO_STATUS_SUCCESS)
        return spk_error_set(err, st == CAIRO_STATUS_NO_MEMORY ? SPK_ERR_NOMEM : SPK_ERR_IO,
                             "cannot draw %s: %s", path, cairo_status_to_string(st));
    return SPK_OK;
}

static void legend(cairo_t *cr, double x, double y, const char *label, int colour, double fs,
                   int dashed)
{
    rgb(cr, colour);
    cairo_set_line_width(cr, 2.5);
    if (dashed) {
        double d[] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 24, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    grey(cr, 0.15);
    text(cr, x + 30, y, 0, 0.5, fs, 0, 0, label);
}

/* ---- curves.png ---- */

typedef struct series {
    int n, cap;
    double *x, *y[4]; /* epoch: train loss, test loss, train acc, test acc; batch: loss, acc */
} series;

static int series_add(series *s, double x, const double *y, int ny)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        double *nx = realloc(s->x, (size_t)cap * sizeof(double));
        if (!nx)
            return -1;
        s->x = nx;
        for (int k = 0; k < ny; k++) {
            double *ny_ = realloc(s->y[k], (size_t)cap * sizeof(double));
            if (!ny_)
                return -1;
            s->y[k] = ny_;
        }
        s->cap = cap;
    }
    s->x[s->n] = x;
    for (int k = 0; k < ny; k++)
        s->y[k][s->n] = y[k];
    s->n++;
    return 0;
}

static void series_free(series *s)
{
    free(s->x);
    for (int k = 0; k < 4; k++)
        free(s->y[k]);
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return v && json_is_number(v) ? json_number_value(v) : NAN;
}

static void draw_line(cairo_t *cr, const frame *f, const series *s, int k, int colour, int dashed,
                      int markers)
{
    rgb(cr, colour);
    cairo_set_line_width(cr, 2.5);
    if (dashed) {
        double d[] = {6, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (int i = 0; i < s->n; i++) {
        if (!isfinite(s->y[k][i])) {
            pen = 0;
            continue;
        }
        if (pen)
            cairo_line_to(cr, fx(f, s->x[i]), fy(f, s->y[k][i]));
        else
            cairo_move_to(cr, fx(f, s->x[i]), fy(f, s->y[k][i]));
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (int i = 0; markers && i < s->n; i++)
        if (isfinite(s->y[k][i])) {
            cairo_arc(cr, fx(f, s->x[i]), fy(f, s->y[k][i]), 4.5, 0, 2 * PI);
            cairo_fill(cr);
        }
}

static void draw_dots(cairo_t *cr, const frame *f, const series *s, int k, int colour)
{
    cairo_set_source_rgba(cr, pal[colour][0], pal[colour][1], pal[colour][2], 0.35);
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->y[k][i])) {
            cairo_arc(cr, fx(f, s->x[i]), fy(f, s->y[k][i]), 2.5, 0, 2 * PI);
            cairo_fill(cr);
        }
}

static void range_of(const series *s, const int *ks, int nk, double *lo, double *hi)
{
    for (int j = 0; j < nk; j++)
        for (int i = 0; i < s->n; i++) {
            double v = s->y[ks[j]][i];
            if (isfinite(v)) {
                *lo = fmin(*lo, v);
                *hi = fmax(*hi, v);
            }
        }
}

static int plot_curves(const char *dir, const char *title, spk_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "spikecl: no %s: curves.png not drawn\n", path);
        return SPK_OK;
    }
    series ep = {0}, bt = {0};
    char line[65536];
    int rc = SPK_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *kind = j ? json_string_value(json_object_get(j, "kind")) : NULL;
        if (kind && !strcmp(kind, "epoch")) {
            double y[4] = {jnum(j, "train_loss"), jnum(j, "test_loss"), jnum(j, "train_accuracy"),
                           jnum(j, "test_accuracy")};
            if (series_add(&ep, jnum(j, "epoch"), y, 4))
                rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        } else if (kind && !strcmp(kind, "batch")) {
            double y[2] = {jnum(j, "train_loss"), jnum(j, "train_accuracy")};
            double x = jnum(j, "epoch") - 1 + jnum(j, "batch") / jnum(j, "batches");
            if (series_add(&bt, x, y, 2))
                rc = spk_error_set(err, SPK_ERR_NOMEM, "out of memory");
        }
        json_decref(j);
    }
    fclose(f);
    if (!rc && ep.n == 0)
        fprintf(stderr, "spikecl: %s has no epoch line: curves.png not drawn\n", path);
    if (rc || ep.n == 0) {
        series_free(&ep);
        series_free(&bt);
        return rc;
    }
    cairo_surface_t *sf;
    cairo_t *cr = canvas(SPK_PLOT_CURVES_W, SPK_PLOT_CURVES_H, &sf);
    double xmax = 1;
    for (int i = 0; i < ep.n; i++)
        xmax = fmax(xmax, ep.x[i]);
    const double fs = 13, pw = (SPK_PLOT_CURVES_W - 90 - 130 - 30) / 2.0;
    for (int panel = 0; panel < 2; panel++) {
        double lo = INFINITY, hi = -INFINITY;
        int ke[2] = {2 * panel, 2 * panel + 1}, kb[1] = {panel};
        range_of(&ep, ke, 2, &lo, &hi);
        range_of(&bt, kb, 1, &lo, &hi);
        if (panel == 1) { /* accuracy: from 0 unless it is all high */
            lo = lo > 0.5 ? floor(lo * 10) / 10 : 0;
            hi = fmin(1, ceil(hi * 10 + 1e-9) / 10);
        } else {
            double pad = 0.05 * (hi - lo) + 1e-6;
            lo = fmax(0, lo - pad);
            hi += pad;
        }
        if (!(hi > lo))
            hi = lo + 1;
        frame fr = {
            90 + panel * (pw + 130), 100, pw, SPK_PLOT_CURVES_H - 100 - 80, 0, xmax, lo, hi, 0};
        axes(cr, &fr, "epoch", panel ? "accuracy" : "loss", panel ? "accuracy" : "loss", fs);
        cairo_save(cr); /* markers may reach a few pixels past the frame */
        cairo_rectangle(cr, fr.x0 - 6, fr.y0 - 6, fr.w + 12, fr.h + 12);
        cairo_clip(cr);
        draw_dots(cr, &fr, &bt, panel, 0);
        draw_line(cr, &fr, &ep, ke[0], 0, 0, 1);
        draw_line(cr, &fr, &ep, ke[1], 1, 1, 1);
        cairo_restore(cr);
    }
    /* one legend for both panels, under the title */
    double lx = SPK_PLOT_CURVES_W / 2.0 - (bt.n ? 330 : 150), ly = 46;
    legend(cr, lx, ly, "train (epoch mean)", 0, fs, 0);
    legend(cr, lx + 190, ly, "test", 1, fs, 1);
    if (bt.n) {
        cairo_set_source_rgba(cr, pal[0][0], pal[0][1], pal[0][2], 0.35);
        cairo_arc(cr, lx + 300, ly, 3, 0, 2 * PI);
        cairo_fill(cr);
        grey(cr, 0.15);
        text(cr, lx + 318, ly, 0, 0.5, fs, 0, 0, "train (running mean at logged batches)");
    }
    grey(cr, 0.1);
    text(cr, SPK_PLOT_CURVES_W / 2.0, 14, 0.5, 0, 16, 1, 0, title);
    series_free(&ep);
    series_free(&bt);
    return finish(cr, sf, dir, "curves.png", err);
}

/* ---- raster.png ---- */

static int plot_raster(const char *dir, const char *title, const spk_probe *p, spk_error *err)
{
    cairo_surface_t *sf;
    cairo_t *cr = canvas(SPK_PLOT_RASTER_W, SPK_PLOT_RASTER_H, &sf);
    const double fs = 13, top = 70, bottom = 60, gap = 80;
    const int L = p->n_layers;
    const double ph = (SPK_PLOT_RASTER_H - top - bottom - gap * (L - 1)) / (L ? L : 1);
    char buf[256];
    for (int l = 0; l < L; l++) {
        const spk_probe_layer *pl = &p->layers[l];
        int shown = pl->features < SPK_PLOT_RASTER_MAX ? pl->features : SPK_PLOT_RASTER_MAX;
        /* rows in neuron numbers, each neuron's row centred on its number */
        frame fr = {100,
                    top + l * (ph + gap),
                    SPK_PLOT_RASTER_W - 140,
                    ph,
                    -0.5,
                    p->T - 0.5,
                    -0.5,
                    pl->features - 0.5,
                    1};
        if (shown < pl->features)
            snprintf(buf, sizeof buf,
                     "%s: %d neurons (%d shown, evenly spaced); rate on the first batch %.3g",
                     pl->name, pl->features, shown, pl->rate);
        else
            snprintf(buf, sizeof buf, "%s: %d neurons; rate on the first batch %.3g", pl->name,
                     pl->features, pl->rate);
        axes(cr, &fr, l == L - 1 ? "time step" : NULL, "neuron", buf, fs);
        double cw = fr.w / p->T, chh = fr.h / shown;
        rgb(cr, 0);
        for (int j = 0; j < shown; j++) {
            int idx = (int)((long)j * pl->features / shown);
            for (int t = 0; t < p->T; t++)
                if (pl->spikes[(size_t)t * pl->features + idx] > 0.5f)
                    cairo_rectangle(cr, fx(&fr, t) - 0.35 * cw, fy(&fr, idx) - fmax(1, chh) / 2,
                                    0.7 * cw, fmax(1, chh));
        }
        cairo_fill(cr);
    }
    grey(cr, 0.1);
    snprintf(buf, sizeof buf, "%s: spikes of test sample #%d (class %d)", title, p->sample0,
             p->label0);
    text(cr, SPK_PLOT_RASTER_W / 2.0, 16, 0.5, 0, 16, 1, 0, buf);
    if (!L)
        text(cr, SPK_PLOT_RASTER_W / 2.0, SPK_PLOT_RASTER_H / 2.0, 0.5, 0.5, 16, 0, 0,
             "the model has no spiking layer");
    return finish(cr, sf, dir, "raster.png", err);
}

/* ---- spike_counter.png ---- */

static int plot_counter(const char *dir, const char *title, const spk_probe *p, spk_error *err)
{
    cairo_surface_t *sf;
    cairo_t *cr = canvas(SPK_PLOT_COUNTER_W, SPK_PLOT_COUNTER_H, &sf);
    const int K = p->classes < 20 ? p->classes : 20, F = p->out_features;
    const int cols = K < 5 ? K : 5, rows = (K + cols - 1) / cols;
    const double fs = 12, left = 70, top = 110, gx = 50, gy = 75;
    const double pw = (SPK_PLOT_COUNTER_W - left - 20 - gx * (cols - 1)) / cols;
    const double ph = (SPK_PLOT_COUNTER_H - top - 60 - gy * (rows - 1)) / rows;
    double ymax = 1;
    for (int c = 0; p->rec_out && c < K; c++)
        for (int j = 0; j < F; j++) {
            double sum = 0;
            for (int t = 0; t < p->T; t++)
                sum += p->rec_out[((size_t)c * p->T + t) * F + j];
            ymax = fmax(ymax, sum);
        }
    char buf[160];
    for (int c = 0; c < K; c++) {
        frame fr = {left + (c % cols) * (pw + gx),
                    top + (c / cols) * (ph + gy),
                    pw,
                    ph,
                    0,
                    p->T,
                    0,
                    ymax * 1.05,
                    1};
        if (p->rec_index[c] < 0 || !p->rec_out) {
            snprintf(buf, sizeof buf, "class %d: no sample", c);
            axes(cr, &fr, "time step", c % cols ? NULL : "spike count", buf, fs);
            continue;
        }
        snprintf(buf, sizeof buf, "class %d: predicted %d", c, p->rec_pred[c]);
        axes(cr, &fr, "time step", c % cols ? NULL : "spike count", buf, fs);
        snprintf(buf, sizeof buf, "test sample #%d", p->rec_index[c]);
        grey(cr, 0.3);
        text(cr, fr.x0 + 6, fr.y0 + 8, 0, 0.5, fs - 1, 0, 0, buf);
        const float *s = p->rec_out + (size_t)c * p->T * F;
        /* the others in grey, then the true class's neuron, then a wrong winner (thinner, so
         * that a tie shows both) */
        const int wrong = p->rec_pred[c] != c ? p->rec_pred[c] : -1;
        for (int pass = 0; pass < 3; pass++)
            for (int j = 0; j < F; j++) {
                int which = j == c ? 1 : j == wrong ? 2 : 0;
                if (which != pass)
                    continue;
                if (which)
                    rgb(cr, which - 1);
                else
                    grey(cr, 0.72);
                cairo_set_line_width(cr, which == 1 ? 3.5 : which ? 2 : 1.3);
                double sum = 0;
                cairo_move_to(cr, fx(&fr, 0), fy(&fr, 0));
                for (int t = 0; t < p->T; t++) {
                    sum += s[(size_t)t * F + j];
                    cairo_line_to(cr, fx(&fr, t + 1), fy(&fr, sum));
                }
                cairo_stroke(cr);
            }
    }
    grey(cr, 0.1);
    snprintf(buf, sizeof buf, "%s: output spike counts over time, first test sample of each class",
             title);
    text(cr, SPK_PLOT_COUNTER_W / 2.0, 12, 0.5, 0, 16, 1, 0, buf);
    double lx = SPK_PLOT_COUNTER_W / 2.0 - 330, ly = 46;
    legend(cr, lx, ly, "true class's neuron", 0, fs, 0);
    legend(cr, lx + 200, ly, "predicted neuron, when wrong", 1, fs, 0);
    grey(cr, 0.72);
    cairo_set_line_width(cr, 1.3);
    cairo_move_to(cr, lx + 460, ly);
    cairo_line_to(cr, lx + 484, ly);
    cairo_stroke(cr);
    grey(cr, 0.15);
    text(cr, lx + 490, ly, 0, 0.5, fs, 0, 0, "other output neurons");
    return finish(cr, sf, dir, "spike_counter.png", err);
}

/* ---- confusion.png ---- */

static int plot_confusion(const char *dir, const char *title, const spk_probe *p, spk_error *err)
{
    cairo_surface_t *sf;
    cairo_t *cr = canvas(SPK_PLOT_CONFUSION_W, SPK_PLOT_CONFUSION_H, &sf);
    const int K = p->classes;
    const double left = 90, top = 80, right = 120, bottom = 80;
    const double side =
        fmin(SPK_PLOT_CONFUSION_W - left - right, SPK_PLOT_CONFUSION_H - top - bottom);
    const double cs = side / K, fs = K <= 12 ? 13 : K <= 24 ? 9 : 0;
    char buf[160];
    for (int t = 0; t < K; t++) {
        long total = 0;
        for (int c = 0; c < K; c++)
            total += p->confusion[(size_t)t * K + c];
        for (int c = 0; c < K; c++) {
            long v = p->confusion[(size_t)t * K + c];
            double frac = total ? (double)v / total : 0;
            /* white to the palette's blue, by the share of the row */
            double r = 1 + (pal[0][0] - 1) * frac, g = 1 + (pal[0][1] - 1) * frac,
                   b = 1 + (pal[0][2] - 1) * frac;
            cairo_set_source_rgb(cr, r, g, b);
            cairo_rectangle(cr, left + c * cs, top + t * cs, cs, cs);
            cairo_fill(cr);
            if (fs > 0) {
                grey(cr, frac > 0.5 ? 1 : 0.15);
                snprintf(buf, sizeof buf, "%ld", v);
                text(cr, left + (c + 0.5) * cs, top + (t + 0.5) * cs, 0.5, 0.5, fs, c == t, 0, buf);
            }
        }
        grey(cr, 0.15);
        snprintf(buf, sizeof buf, "%d", t);
        if (fs > 0 || t % 5 == 0) {
            text(cr, left - 8, top + (t + 0.5) * cs, 1, 0.5, 13, 0, 0, buf);
            text(cr, left + (t + 0.5) * cs, top + side + 8, 0.5, 1, 13, 0, 0, buf);
        }
        if (total)
            snprintf(buf, sizeof buf, "%.1f%%",
                     100.0 * (double)p->confusion[(size_t)t * K + t] / (double)total);
        else
            snprintf(buf, sizeof buf, "-");
        if (fs > 0)
            text(cr, left + side + 14, top + (t + 0.5) * cs, 0, 0.5, 13, 0, 0, buf);
    }
    grey(cr, 0.2);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left + 0.5, top + 0.5, side, side);
    cairo_stroke(cr);
    grey(cr, 0.1);
    text(cr, left + side / 2, top + side + 40, 0.5, 1, 14, 0, 0, "predicted class");
    text(cr, left - 50, top + side / 2, 0.5, 0.5, 14, 0, -PI / 2, "true class");
    if (fs > 0)
        text(cr, left + side + 14, top - 14, 0, 0.5, 13, 1, 0, "class acc.");
    snprintf(buf, sizeof buf, "%s: confusion matrix, %d test samples, accuracy %.2f%%", title, p->n,
             p->n ? 100.0 * p->correct / p->n : 0.0);
    text(cr, SPK_PLOT_CONFUSION_W / 2.0, 16, 0.5, 0, 16, 1, 0, buf);
    text(cr, SPK_PLOT_CONFUSION_W / 2.0, 42, 0.5, 0, 12, 0, 0,
         "rows: true class; colour: share of the row; right: per-class accuracy");
    return finish(cr, sf, dir, "confusion.png", err);
}

/* ---- membrane.png ---- */

static int plot_membrane(const char *dir, const char *title, const spk_probe *p, spk_error *err)
{
    cairo_surface_t *sf;
    cairo_t *cr = canvas(SPK_PLOT_MEMBRANE_W, SPK_PLOT_MEMBRANE_H, &sf);
    const int F = p->out_features;
    const spk_probe_layer *out = p->n_layers ? &p->layers[p->n_layers - 1] : NULL;
    char buf[200];
    grey(cr, 0.1);
    if (!p->mem || !out) {
        text(cr, SPK_PLOT_MEMBRANE_W / 2.0, SPK_PLOT_MEMBRANE_H / 2.0, 0.5, 0.5, 16, 0, 0,
             "the output layer keeps no membrane potential ('mem')");
        return finish(cr, sf, dir, "membrane.png", err);
    }
    /* the true class's neuron, then the three others that fired most */
    int pick[4], np = 0;
    if (p->label0 >= 0 && p->label0 < F)
        pick[np++] = p->label0;
    while (np < 4 && np < F) {
        int best = -1;
        double best_n = -1;
        for (int j = 0; j < F; j++) {
            int used = 0;
            for (int k = 0; k < np; k++)
                used |= pick[k] == j;
            double n = 0;
            for (int t = 0; t < p->T; t++)
                n += out->spikes[(size_t)t * F + j];
            if (!used && n > best_n) {
                best_n = n;
                best = j;
            }
        }
        pick[np++] = best;
    }
    double lo = 0, hi = isfinite(p->threshold) ? p->threshold : 0;
    for (int k = 0; k < np; k++)
        for (int t = 0; t < p->T; t++) {
            lo = fmin(lo, p->mem[(size_t)t * F + pick[k]]);
            hi = fmax(hi, p->mem[(size_t)t * F + pick[k]]);
        }
    double pad = 0.08 * (hi - lo) + 1e-3;
    frame fr = {90,
                70,
                SPK_PLOT_MEMBRANE_W - 330,
                SPK_PLOT_MEMBRANE_H - 70 - 70,
                0,
                p->T - 1,
                lo - pad,
                hi + pad,
                1};
    if (p->T < 2)
        fr.xmax = 1;
    snprintf(buf, sizeof buf, "%s: membrane of output layer %s, test sample #%d (class %d)", title,
             out->name, p->sample0, p->label0);
    axes(cr, &fr, "time step", "membrane potential", buf, 13);
    cairo_save(cr); /* the dots of the last step reach past the frame */
    cairo_rectangle(cr, fr.x0, fr.y0, fr.w + 6, fr.h);
    cairo_clip(cr);
    if (isfinite(p->threshold)) {
        grey(cr, 0.1);
        cairo_set_line_width(cr, 1.5);
        double d[] = {8, 5};
        cairo_set_dash(cr, d, 2, 0);
        cairo_move_to(cr, fr.x0, fy(&fr, p->threshold));
        cairo_line_to(cr, fr.x0 + fr.w, fy(&fr, p->threshold));
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
    }
    for (int k = np - 1; k >= 0; k--) {
        rgb(cr, k);
        cairo_set_line_width(cr, k == 0 ? 3 : 2);
        for (int t = 0; t < p->T; t++) {
            double y = fy(&fr, p->mem[(size_t)t * F + pick[k]]);
            if (t)
                cairo_line_to(cr, fx(&fr, t), y);
            else
                cairo_move_to(cr, fx(&fr, t), y);
        }
        cairo_stroke(cr);
        for (int t = 0; t < p->T; t++) /* a spike: a dot on the membrane that crossed */
            if (out->spikes[(size_t)t * F + pick[k]] > 0.5f) {
                cairo_arc(cr, fx(&fr, t), fy(&fr, p->mem[(size_t)t * F + pick[k]]), 4.5, 0, 2 * PI);
                cairo_fill(cr);
            }
    }
    cairo_restore(cr);
    double lx = fr.x0 + fr.w + 25, ly = fr.y0 + 20;
    for (int k = 0; k < np; k++) {
        double n = 0;
        for (int t = 0; t < p->T; t++)
            n += out->spikes[(size_t)t * F + pick[k]];
        snprintf(buf, sizeof buf, "neuron %d%s: %.0f spikes", pick[k],
                 pick[k] == p->label0 ? " (true)" : "", n);
        legend(cr, lx, ly + 24 * k, buf, k, 13, 0);
    }
    if (isfinite(p->threshold)) {
        snprintf(buf, sizeof buf, "threshold %.3g", p->threshold);
        grey(cr, 0.1);
        cairo_set_line_width(cr, 1.5);
        double d[] = {8, 5};
        cairo_set_dash(cr, d, 2, 0);
        cairo_move_to(cr, lx, ly + 24 * np);
        cairo_line_to(cr, lx + 24, ly + 24 * np);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        text(cr, lx + 30, ly + 24 * np, 0, 0.5, 13, 0, 0, buf);
    }
    text(cr, lx, ly + 24 * (np + 1) + 4, 0, 0.5, 12, 0, 0, "dots: spikes");
    return finish(cr, sf, dir, "membrane.png", err);
}

int spk_plot_all(const char *dir, const char *title, const spk_probe *p, spk_error *err)
{
    int rc = plot_curves(dir, title, err);
    if (!rc)
        rc = plot_raster(dir, title, p, err);
    if (!rc)
        rc = plot_counter(dir, title, p, err);
    if (!rc)
        rc = plot_confusion(dir, title, p, err);
    if (!rc)
        rc = plot_membrane(dir, title, p, err);
    return rc;
}
