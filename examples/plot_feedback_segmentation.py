"""
Segmenting noisy shapes with feedback
=====================================

`FeedbackSegmenter` runs a U-Net several times, feeding its own (softmaxed) output back
next to the image, and adds a decaying update to its state at each step. Here it is
trained on noisy triangles from `make_noisy_shapes` next to the same U-Net without
feedback (``feedback=False``), and we look at how one image's segmentation evolves over
the steps, including steps past the trained depth.
"""

import matplotlib.pyplot as plt

from sklearn_recursive import FeedbackSegmenter
from sklearn_recursive.datasets import make_noisy_shapes

# %%
# Data: one triangle per 32x32 image, Gaussian noise of standard deviation 2 added to
# the clean 0/1 picture, then each image min-max scaled. The noise is drawn once.
X_train, y_train = make_noisy_shapes(64, size=32, sigma=2.0, random_state=0)
X_test, y_test = make_noisy_shapes(32, size=32, sigma=2.0, random_state=1)
print(X_train.shape, y_train.shape)

# %%
# The same small U-Net with and without feedback, the same seed and training budget.
# the same budget for both: 30 epochs, no early stop on a plateau
common = dict(base_channels=8, depth=2, max_epochs=30, n_iter_no_change=None, batch_size=8,
              lr=3e-3, random_state=0)
feedback = FeedbackSegmenter(n_steps=5, **common).fit(X_train, y_train)
plain = FeedbackSegmenter(feedback=False, **common).fit(X_train, y_train)
print(f"test F1, feedback (5 steps): {feedback.score(X_test, y_test):.3f}")
print(f"test F1, feed-forward:       {plain.score(X_test, y_test):.3f}")

# %%
# Thinking longer: the score after 1 to 20 steps. The decay makes the state settle, so
# steps past the trained depth (5) change little.
for steps in (1, 2, 5, 10, 20):
    print(f"{steps:>2} steps: F1 {feedback.score(X_test, y_test, n_steps=steps):.3f}")

# %%
# One image, step by step: the foreground probability after each step.
shown = [1, 2, 3, 5, 10, 20]
probas = list(feedback.staged_predict_proba(X_test[:1], n_steps=max(shown)))
fig, axes = plt.subplots(1, len(shown) + 3, figsize=(2 * (len(shown) + 3), 2.4))
axes[0].imshow(X_test[0, 0], cmap="gray")
axes[0].set_title("input")
for ax, t in zip(axes[1:], shown):
    ax.imshow(probas[t - 1][0, 1], cmap="magma", vmin=0, vmax=1)
    ax.set_title(f"step {t}")
axes[-2].imshow(plain.predict_proba(X_test[:1])[0, 1], cmap="magma", vmin=0, vmax=1)
axes[-2].set_title("feed-forward")
axes[-1].imshow(y_test[0], cmap="gray")
axes[-1].set_title("truth")
for ax in axes:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
