"""What `make rehearse` changes in each notebook's parameters cell (papermill injects it after that cell).

The rehearsal runs the full profile's branch of every notebook on a CPU. Only sizes, epochs and the
backbone come down here, never the code path: each value below says why it is what it is. Where a lesson
lets the backbone be chosen, `BACKBONE="mobilenet_0.25"` runs it with the pack's real ImageNet weights, so
its relative claims are judged on real features (MobileNetV2's stand-in weights are random). `{presets}`
is the folder of local KerasHub presets that scripts/rehearsal_presets.py writes.
"""

PARAMETERS: dict[str, dict] = {}

PARAMETERS["00_why_transfer_works"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the claims are judged on real features
    "IMAGE_SIZE": 128,  # a size the alpha=0.25 file was trained at, as offline
    "TEST_PER_CLASS": 15,  # 150 test photos: enough for the relative claims, half the extraction
    "HEAD_EPOCHS": 60,  # a linear head on 100 cached vectors converges well before 100 epochs
    "TWO_CLASS_EPOCHS": 15,  # the only fit through the base: half the offline epochs
}

PARAMETERS["01_small_similar_feature_extraction"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the claims are judged on real features
    "IMAGE_SIZE": 96,  # 0.56x the offline pixels; the frozen head still reaches about 0.87 on these classes
    "IMAGES_PER_CLASS": 10,  # the offline size: the head-first claim is made for tens of photos a class
    "TEST_PER_CLASS": 15,  # 150 test photos, evaluated by six models
    "LARGER_PER_CLASS": 20,  # the heads again on a larger set, at a fraction of the extraction
    "HEAD_EPOCHS": 60,  # linear and hidden heads on cached vectors
    "BUDGET_EPOCHS": 6,  # the three end-to-end runs through the base, the lesson's cost: 0.4x offline
}

PARAMETERS["02_small_different_cut_earlier"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the claims are judged on real features
    "IMAGE_SIZE": 96,  # 0.56x the offline pixels; every block end still has a map of 3x3 or more
    "IMAGES_PER_CLASS": 10,  # still a small set: half the offline one, the probes' cost halves
    "VAL_PER_CLASS": 5,  # 50 validation images choose the cut: enough to run the choice, not to trust it
    "TEST_PER_CLASS": [40, 40, 10],  # (Fashion-MNIST, EuroSAT, Caltech-101): a third of the forward passes
    "PROBE_EPOCHS": 40,  # linear heads on 100 cached vectors converge well within 40 epochs
    "FINE_TUNE_EPOCHS": 2,  # the only fit through the base: runs the fine-tune and its BatchNorm check
    # the BatchNorm arms at the offline size (the full branch's 160 px is GPU work); their epochs stay the
    # offline ones: after tracing, 10 epochs of 100 images at 64 px take seconds
    "BN_IMAGE_SIZE": 64,
}

PARAMETERS["03_large_similar_fine_tune_top"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the claims are judged on real features
    "IMAGES_PER_CLASS": 150,  # the fewest the lesson's premise allows (tlkit.LARGE_FROM a class)
    "VAL_PER_CLASS": 10,  # validation is only watched during fit: 50 images do
    "TEST_PER_CLASS": 20,  # 100 test images: the BatchNorm probe's one-class batches need 20 a class or more
    "IMAGE_SIZE": 64,  # the offline profile's size: its claims were measured there
    "HEAD_EPOCHS": 10,  # a linear head on cached features converges within 10 epochs
    "FINE_TUNE_EPOCHS": 1,  # each of the three phase-two runs through the base: one epoch runs all their code
    "RANGE_STEPS": 30,  # the range test still reaches the rates where the loss climbs (lr x1.6 a step)
    "TOO_HIGH_EPOCHS": 1,  # one epoch at 1e-2 is enough to do the harm the claims check
}

PARAMETERS["04_large_different_fine_tune_all"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the claims are judged on real features
    "IMAGE_SIZES": {"fashion_mnist": 32, "eurosat": 64},  # the offline sizes (MobileNetV2 at 96 px is GPU work)
    "TEST_PER_CLASS": 50,  # 500 Fashion-MNIST and 250 EuroSAT test images
    # the offline profile's smallest and largest Fashion-MNIST runs (the gap claim needs two; offline the gap
    # was 0.23-0.35 at (100, 6) and 0.09-0.14 at (1000, 2); with fewer epochs the small run's ImageNet start is
    # still climbing and the gap swings), and one small EuroSAT run that fetches and trains on the tiles
    "RUNS": [["fashion_mnist", 100, 6], ["fashion_mnist", 1000, 2], ["eurosat", 100, 3]],
}

PARAMETERS["05_choosing_a_strategy"] = {
    # BACKBONE stays mobilenet_0.25 in both profiles: the backbone tlkit.advise is calibrated for
    "IMAGE_SIZE": 64,  # the offline size: 0.16x the full profile's pixels
    # two sizes run every strategy, the crossing and the nested subsets; 50 a class is the smallest largest
    # size at which section 5's first run (lr 1e-3) reaches its target within 20 epochs (epoch 13; at 20 a
    # class it did not within 40), the premise of the warm-start claim
    "SIZES": [5, 50],
    "TEST_PER_CLASS": 20,  # 100 test images a dataset
    "EPOCHS": 2,  # fine-tuning epochs a run: the curves' code, not their shape, is what is rehearsed here
    "SCRATCH_EPOCHS": 2,  # from scratch stays far behind at any budget this small
    "DEPTH_IMAGES_PER_CLASS": 10,  # 50 images through the 14-output extractor, twice
    "PROBE_EPOCHS": 20,  # linear heads on 50 cached vectors
    "WARM_EPOCHS": 20,  # six head runs on 250 cached vectors (see SIZES)
}

PARAMETERS["06_beyond_classification_detection"] = {
    # sections 1-5 keep MobileNet a=0.25 (real weights in every profile) at 96 px; every budget is cut
    "SOURCE_IMAGES": 200,  # a sixth of the source scenes: enough for the source detector to train at all
    "TARGET_SIZES": [20],  # one size runs all five arms; a second repeats the same code at ~45 s
    "TEST_IMAGES": 40,  # every arm is scored on these: mAP runs, its value is not judged
    "SOURCE_STEPS": 30,  # the source heads on cached features (offline: 400)
    "SOURCE_FINE_TUNE_STEPS": 10,  # the whole source detector, through the base (offline: 150)
    "STEPS": 12,  # each of the 5 arms (offline: 160): below the claims' scale, which the lesson checks
    "CAM_IMAGES": 24,  # section 6's training and test scenes (offline: 200): every cell and plot runs
    "CAM_HEAD_EPOCHS": 3,  # its heads on cached features (offline: 30)
    "CAM_FINE_TUNE_EPOCHS": 1,  # one pass through the whole classifier (offline: 2); claims need 200 scenes
    "RETINANET_PRESET": "{presets}/retinanet_resnet50_fpn_coco",  # the stand-in: the real architecture
    "RETINANET_SCENE_SIZE": 192,  # the smallest scene that holds the 48-160 px objects
    "RETINANET_IMAGE_SIZE": 256,  # still a resize (192 -> 256), so boxes change frame; 512 px is GPU work
    "RETINANET_IMAGES": 4,  # one batch to fine-tune and to score: tracing ResNet-50 costs more than a step
    "RETINANET_EPOCHS": 1,  # one training step traces and runs the whole train step (full profile: 10)
    "RETINANET_BATCH_SIZE": 4,  # the 4 scenes in one batch (full profile: 8)
}

PARAMETERS["07_beyond_images_word_vectors"] = {
    "NUM_SEEDS": 1,  # one seed (full profile: 5): the claims need 3 or more, which the lesson checks
    "TRAIN_SIZES": [20, 60],  # the fewest and a larger set: both ends of the grid run
    "TEST_SIZE": 100,  # held-out SOURCE sentences; the cross-domain set stays all 1,000 TARGET ones
    "HEAD_STEPS": 20,  # gradient steps with the vectors frozen (offline: 120)
    "FINE_TUNE_STEPS": 10,  # then unfrozen (offline: 60)
    "BERT_PRESET": "{presets}/bert_tiny_en_uncased",  # the stand-in: BERT-tiny's shapes, random weights
    "BERT_EPOCHS": 1,  # one pass over the 60 training sentences
    "BERT_TOKENS": 32,  # a quarter of the full profile's 128: the 1,100 test sentences dominate on a CPU
}

PARAMETERS["08_beyond_one_device"] = {
    "BACKBONE": "mobilenet_0.25",  # real ImageNet weights in the pack: the loss falls as it does offline
    "EPOCHS": 2,  # 10 steps a run: both engines' runs, their shares and the curves' comparison all run
}
