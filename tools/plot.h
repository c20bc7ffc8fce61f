/* spikecl CLI — the run folder's pictures, PNG files drawn with cairo:
 *   curves.png         loss and accuracy per epoch, train and test (train loss per logged batch
 *                      in light dots), from metrics.jsonl
 *   raster.png         spikes of the first test sample in every spiking layer, neurons against
 *                      time (at most SPK_PLOT_RASTER_MAX neurons of a layer, evenly spaced)
 *   spike_counter.png  cumulative spike counts of the output neurons over time for the first
 *                      test sample of each class, the true class's neuron highlighted
 *   confusion.png      the confusion matrix on the test set, with per-class accuracy
 *   membrane.png       membrane potential of a few output neurons for the first test sample,
 *                      with the firing threshold
 * Every picture has a fixed size (below), so that its file is checked easily. */
#ifndef SPK_TOOLS_PLOT_H
#define SPK_TOOLS_PLOT_H

#include "probe.h"
#include "spikecl/spikecl.h"

#define SPK_PLOT_CURVES_W    1100
#define SPK_PLOT_CURVES_H    450
#define SPK_PLOT_RASTER_W    1000
#define SPK_PLOT_RASTER_H    800
#define SPK_PLOT_COUNTER_W   1250
#define SPK_PLOT_COUNTER_H   680
#define SPK_PLOT_CONFUSION_W 820
#define SPK_PLOT_CONFUSION_H 720
#define SPK_PLOT_MEMBRANE_W  1000
#define SPK_PLOT_MEMBRANE_H  480
#define SPK_PLOT_RASTER_MAX  200

/* Draws the five pictures into dir from a probe and dir/metrics.jsonl (curves.png is skipped,
 * with a note on stderr, when metrics.jsonl has no epoch line). title names the model. */
int spk_plot_all(const char *dir, const char *title, const spk_probe *p, spk_error *err);

#endif
