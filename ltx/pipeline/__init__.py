"""Generation in pure PyTorch (no ComfyUI): model parts in, video and audio latents (and decoded media) out.

Entry points: :func:`~.generate.generate` (text / image / keyframe / audio → video with sound) and
:func:`~.extend_clip.extend` (continue a clip with its sound), both taking a :class:`~.protocols.ModelParts` and a
:class:`~.request.Request`; :func:`~.parts.load_model_parts` builds the parts from files; :mod:`.cli` is
``python -m rs_ltxv generate`` / ``demo``.

Modules, from the outside in:

* ``protocols`` — what the pipeline needs from each model part (``PromptEncoderProtocol``, ``VideoVAEProtocol``,
  ``AudioVAEProtocol``, ``LatentUpsamplerProtocol``) and the ``ModelParts`` bundle; ``parts`` — loading them from
  files and the adapters (``VideoVAEAdapter``, ``UpsamplerAdapter``);
* ``request`` (every user setting) and ``checks`` (settings checked before any weight is read);
* ``generate``, ``extend_clip`` (the two-stage recipes) and ``common`` (what both share); ``extend`` (the
  bookkeeping of an extension: chunk, overlap, stitching);
* ``stage`` (one denoising stage), ``track`` (a stream with its conditioning), ``latents`` (sizes, noise);
* ``denoiser`` (guided x0 predictions), ``guidance``, ``sampling`` (the loops; ``Callbacks`` = progress + cancel),
  ``steps``, ``res2s``, ``schedules``, ``kdiffusion`` (external k-diffusion-style samplers such as ComfyUI SAMPLERs);
* ``media`` (images, audio files and MP4 via PyAV).
"""
