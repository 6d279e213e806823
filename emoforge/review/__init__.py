"""Human review through Label Studio: export the review queue with its labelling config,
parse an annotation export, and append the labels to the corpus rows. It reads and writes
the corpus through ``emoforge.storage``; nothing below imports it."""
