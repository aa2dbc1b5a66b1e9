"""FCMAE (ConvNeXt V2): masks and the masked encoder, the decoder, the pre-training model, and its
trainer: the pre-training phase (`PretrainTrainer`) and the fine-tuning that starts from its encoder
(`FineTuner`), both subclasses of the ordinary `Trainer`."""
