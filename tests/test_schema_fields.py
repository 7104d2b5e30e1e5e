"""Every recipe field either changes behaviour (a named test shows it) or is refused.

``FIELD_TESTS`` maps ``Model.field`` (the model that declares the field) to the tests that show its effect;
``NO_BEHAVIOUR_TEST`` lists the fields that have no such test yet, with what they do (known gaps, to be closed or
the field refused). ``test_every_recipe_field_is_in_the_table`` walks the recipe models' ``model_fields``
recursively, so a new field with neither a test nor an entry here fails the suite. To add a field: add its row with
the test that shows it. The tests at the bottom of this file cover the trainer fields that had none.
"""

from __future__ import annotations

import ast
import inspect
import json
import math
import typing
from functools import cache
from pathlib import Path

import pytest
from pydantic import BaseModel
from shardsmith.recipes import RecipeError, load_recipe
from shardsmith.schemas.block_recipe import (
    CotBlockRecipe,
    DistillBlockRecipe,
    McqBlockRecipe,
    PreferenceBlockRecipe,
    RepairBlockRecipe,
    SftBlockRecipe,
    SurgicalBlockRecipe,
)
from shardsmith.schemas.mix_recipe import MixRecipe
from shardsmith.schemas.manifest import ShardManifest
from shardsmith.schemas.selfteach_recipe import SelfTeachRecipe
from shardsmith.schemas.train_recipe import EngineSpec, ScheduleSpec, StageSpec, TrainRecipe

TESTS = Path(__file__).resolve().parent
DEMO = TESTS.parent / "recipes" / "train" / "demo.yaml"
RECIPE_MODELS = (TrainRecipe, SftBlockRecipe, PreferenceBlockRecipe, McqBlockRecipe, CotBlockRecipe, RepairBlockRecipe,
                 DistillBlockRecipe, SurgicalBlockRecipe, MixRecipe, SelfTeachRecipe)

# trainer fields shown by the tests of this file
HERE = "test_schema_fields.py::"
ENGINE_CFG = HERE + "test_engine_fields_reach_the_deepspeed_config"
REFUSED = HERE + "test_inert_settings_are_refused_with_the_field_named"
SCHEDULE = HERE + "test_schedule_fields_shape_the_lr"
MODEL_CFG = HERE + "test_model_fields_reach_the_hf_config"
RUN = "test_trainer_run.py::"
BF16_RUN = RUN + "test_bf16_frozen_embeddings_checkpointing_neftune_mixce"
DPO_RUN = RUN + "test_dpo_options_reference_folder_sft_term_mean_logp"
DATA = "test_trainer_data.py::"
OFFLOAD = "test_trainer_offload.py::"
MODEL = "test_trainer_model.py::"
MIX = "test_mix_robustness.py::"
OUTPUTS = "test_mix_outputs.py::"
WORDS = "test_word_splitters.py::"
STRUCTURE = "test_builders_structure.py::"
BLOCK = "test_block_fields.py::"
BLOCKSRC = "test_mix_block_source.py::"
SURGICAL = "test_builders_surgical.py::"
KINDS = "test_block_kinds.py::"
SWEEP = "test_sweeps.py::"
EXEC = "test_executors.py::"
EXEC_SLURM = EXEC + "test_slurm_scripts_carry_the_plan_and_build_the_same_shards"
EXEC_RAY = EXEC + "test_ray_and_local_write_byte_identical_shards"
OBJ = "test_trainer_objectives.py::"
OBJ_RESUME = OBJ + "test_muon_and_lora_train_and_resume_exactly_after_a_kill"
DISTILL = "test_builders_distill.py::"
TEACHER_FIELDS = DISTILL + "test_teacher_name_system_dtype_device_and_hub_id_take_effect"
FF313_CHAIN = "test_chain_ff313.py::test_ff313_distill_surgical_repair_stages_on_blocks_from_their_recipes"
STEEL_MCQ = KINDS + "test_steel_mcq_builds_literal_wanjuan_and_arc_documents"
STEEL_COT = KINDS + "test_steel_mcq_cot_never_states_the_answer_before_the_explanation"
MEMPHIS = KINDS + "test_memphis_cot_builds_tinycot_documents"
COT_OPTIONS = KINDS + "test_cot_kind_defaults_to_tinycot_and_mcq_answer_letter"
FF_REPAIR = KINDS + "test_ff_repair_hits_every_count_exactly"
REPAIR_SHORT = KINDS + "test_repair_shortfall_names_every_short_source"
REPAIR_OPTIONS = KINDS + "test_repair_options_reach_mcq_and_cot_sources"
NO_SELF_COGNITION = KINDS + "test_mcq_cot_and_repair_recipes_refuse_self_cognition"
DEDUP = "test_dedup.py::"
DEDUP_OFF = DEDUP + "test_exact_off_finds_the_exact_copy_as_a_near_duplicate_and_minhash_off_misses_near_ones"
DEDUP_REFUSED = DEDUP + "test_recipe_refuses_unknown_dedup_sources_and_untiered_sources_under_keep_tier"
SPANS = DEDUP + "test_sentence_span_dedup_cuts_a_repeated_paragraph_from_the_later_document"
SIGNATURE = "test_dedup_signature.py::test_signature_files_equal_datatrove"
SIGNATURE_SETTINGS = "test_dedup_signature.py::test_settings_reach_the_stage"
DECONT = "test_decontam.py::"
DECONT_ENV = DECONT + "test_benchmarks_from_env_none_said_loudly_and_opt_out_recorded"
DECONT_LEN = DECONT + "test_ngram_min_ngram_and_min_overlap_shape_what_is_caught"
ST = "test_selfteach.py::"
ST_ROUNDS = ST + "test_two_rounds_keep_each_rounds_data_and_weights_named"
ST_SETTINGS = ST + "test_settings_reach_the_sampler_the_pairs_block_and_the_stage"
ST_QUESTIONS = ST + "test_question_sources_and_limit_choose_the_questions"
ST_AVERAGE = ST + "test_average_direction_and_method"

FIELD_TESTS: dict[str, tuple[str, ...]] = {
    # --- train recipe --------------------------------------------------------------------------------------
    "TrainRecipe.name": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "TrainRecipe.seed": (RUN + "test_kill_and_resume_equals_an_uninterrupted_run",
                         DATA + "test_windows_are_a_pure_function_of_seed_and_step"),
    "TrainRecipe.model": (MODEL + "test_seed_presets_have_the_seeds_sizes", MODEL_CFG),
    "TrainRecipe.engine": (ENGINE_CFG, "test_trainer_zero3.py::test_zero3_matches_zero2_and_exports_full_weights"),
    "TrainRecipe.stages": (RUN + "test_demo_pretrain_loss_falls_well_below_its_first_value",),
    "TrainRecipe.notes": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "ModelSpec.preset": (MODEL + "test_seed_presets_have_the_seeds_sizes", REFUSED),
    "ModelSpec.path": (MODEL_CFG, REFUSED),
    "ModelSpec.config": (MODEL_CFG, RUN + "test_transformer_1b_chat_chain_runs_in_miniature"),
    "ModelSpec.pad_vocab_to_multiple_of": (MODEL_CFG,),
    "ModelSpec.attn_implementation": (MODEL + "test_changing_one_packed_document_leaves_the_others_logits_unchanged",
                                      MODEL_CFG),
    "EngineSpec.zero_stage": ("test_trainer_zero3.py::test_zero3_matches_zero2_and_exports_full_weights", ENGINE_CFG),
    "EngineSpec.precision": (BF16_RUN, ENGINE_CFG),
    "EngineSpec.overlap_comm": (ENGINE_CFG, REFUSED),
    "EngineSpec.reduce_bucket_size": (ENGINE_CFG, REFUSED),
    "EngineSpec.allgather_bucket_size": (ENGINE_CFG, REFUSED),
    "EngineSpec.offload_optimizer": (OFFLOAD + "test_offloaded_optimizer_trains_the_same_losses_as_adamw",
                                     OFFLOAD + "test_cpu_adam_gets_adamw_mode_and_the_weight_decay_groups",
                                     REFUSED),
    "EngineSpec.attention": ("test_attention.py::test_flex_and_varlen_logits_equal_the_dense_mask",
                             "test_attention.py::test_auto_is_varlen_on_cpu_and_flex_cannot_train_here"),
    "EngineSpec.batch": ("test_multiproc.py::test_one_two_three_processes_same_global_batch_same_loss_curve",
                         "test_multiproc.py::test_a_world_that_does_not_divide_the_global_batch_is_refused"),
    "EngineSpec.compile": ("test_engine_options.py::test_compile_and_activation_checkpointing_reach_the_engine",),
    "EngineSpec.activation_checkpointing": (
        "test_engine_options.py::test_compile_and_activation_checkpointing_reach_the_engine",),
    "EngineSpec.config_file": (ENGINE_CFG,),
    "EngineSpec.config": (ENGINE_CFG,),
    "StageSpec.name": (RUN + "test_sft_starts_from_the_pretrain_checkpoint",),
    "StageSpec.objective": ("test_trainer_dpo.py::test_objective_and_set_kind_must_match",
                            MODEL + "test_sft_loss_unchanged_when_prompt_tokens_change_changed_when_answer_tokens_do"),
    "StageSpec.data": (DATA + "test_windows_are_a_pure_function_of_seed_and_step",),
    "StageSpec.init_from": (RUN + "test_sft_starts_from_the_pretrain_checkpoint",
                            RUN + "test_missing_init_from_stops_before_any_stage_runs"),
    "StageSpec.seq_len": ("test_trainer_dpo.py::test_pairs_whose_prompt_fills_the_row_are_skipped",),
    "StageSpec.micro_batch_size": (RUN + "test_transformer_1b_chat_chain_runs_in_miniature", ENGINE_CFG),
    "StageSpec.grad_accum": (RUN + "test_transformer_1b_chat_chain_runs_in_miniature", ENGINE_CFG),
    "StageSpec.max_steps": (RUN + "test_demo_pretrain_loss_falls_well_below_its_first_value",),
    "StageSpec.epochs": (RUN + "test_transformer_1b_chat_chain_runs_in_miniature",),
    "StageSpec.stop_at_step": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "StageSpec.optimizer": (BF16_RUN,),
    "StageSpec.schedule": (SCHEDULE,),
    "StageSpec.engine": (BF16_RUN,),
    "StageSpec.save_every": (RUN + "test_kill_and_resume_equals_an_uninterrupted_run",
                             HERE + "test_stop_log_and_checkpoint_fields_shape_a_run"),
    "StageSpec.eval_every": (RUN + "test_dpo_starts_from_sft_at_log2_and_learns_the_preference",),
    "StageSpec.log_every": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "StageSpec.keep_checkpoints": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run", REFUSED),
    "StageSpec.seed": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "StageSpec.neftune_alpha": (BF16_RUN,),
    "StageSpec.mixce_ratio": (BF16_RUN, REFUSED),
    "StageSpec.freeze_embeddings": (BF16_RUN,),
    "StageSpec.gradient_checkpointing": (BF16_RUN,),
    "StageSpec.export_dtype": (BF16_RUN,),
    "StageSpec.dpo": (RUN + "test_dpo_starts_from_sft_at_log2_and_learns_the_preference",),
    "DataSpec.sets": (DATA + "test_windows_are_a_pure_function_of_seed_and_step",),
    "DataSpec.sampling": (DATA + "test_epoch_order_covers_every_window_once",),
    "DataSpec.packing": (DATA + "test_packed_rows_restart_positions_and_isolate_documents",),
    "DataSpec.document_masking": (DATA + "test_packed_rows_restart_positions_and_isolate_documents",),
    "DataSpec.validation_split": (HERE + "test_stop_log_and_checkpoint_fields_shape_a_run",),
    "DataSpec.val_rows": (RUN + "test_dpo_val_loss_equals_a_direct_per_pair_computation",),
    "DataSet.path": (RUN + "test_missing_shard_file_stops_before_work",),
    "DataSet.weight": (DATA + "test_ranks_read_disjoint_rows_whose_union_is_the_single_process_batch",),
    "OptimizerSpec.name": (HERE + "test_single_choice_fields_accept_only_their_value",),
    "OptimizerSpec.lr": (SCHEDULE,),
    "OptimizerSpec.betas": (OFFLOAD + "test_cpu_adam_gets_adamw_mode_and_the_weight_decay_groups",),
    "OptimizerSpec.eps": (OFFLOAD + "test_cpu_adam_gets_adamw_mode_and_the_weight_decay_groups",),
    "OptimizerSpec.weight_decay": (OFFLOAD + "test_cpu_adam_gets_adamw_mode_and_the_weight_decay_groups",),
    "OptimizerSpec.grad_clip": (ENGINE_CFG,),
    "ScheduleSpec.kind": (DATA + "test_schedules", SCHEDULE),
    "ScheduleSpec.warmup_steps": (DATA + "test_schedules",),
    "ScheduleSpec.warmup_ratio": (SCHEDULE,),
    "ScheduleSpec.min_lr_ratio": (DATA + "test_schedules", REFUSED),
    "ScheduleSpec.decay_ratio": (DATA + "test_schedules", REFUSED),
    "ScheduleSpec.decay_shape": (SCHEDULE, REFUSED),
    "DPOSpec.beta": ("test_trainer_dpo.py::test_dpo_loss_formulas", DPO_RUN),
    "DPOSpec.loss_type": ("test_trainer_dpo.py::test_dpo_loss_formulas", DPO_RUN),
    "DPOSpec.label_smoothing": ("test_trainer_dpo.py::test_dpo_loss_formulas", REFUSED),
    "DPOSpec.logp": (DPO_RUN,),
    "DPOSpec.sft_weight": (DPO_RUN,),
    "DPOSpec.reference": (DPO_RUN,),
    "StageSpec.rank": (OBJ + "test_rank_training_raises_the_held_out_chosen_over_rejected_margin",),
    "RankSpec.weight": (OBJ + "test_rank_loss_equals_a_hand_computation_on_fixed_log_probs",
                        OBJ + "test_rank_training_raises_the_held_out_chosen_over_rejected_margin"),
    "StageSpec.kd": (OBJ + "test_kd_lowers_the_kl_to_the_teacher_on_held_out_rows", OBJ + "test_kd_settings_are_validated"),
    "KDSpec.teacher": (OBJ + "test_kd_lowers_the_kl_to_the_teacher_on_held_out_rows",
                       OBJ + "test_a_teacher_with_another_tokenizer_is_refused_before_work"),
    "KDSpec.temperature": (OBJ + "test_kd_loss_follows_its_formula_in_temperature_and_alpha",
                           OBJ + "test_kd_lowers_the_kl_to_the_teacher_on_held_out_rows"),
    "KDSpec.alpha": (OBJ + "test_kd_loss_follows_its_formula_in_temperature_and_alpha",
                     OBJ + "test_kd_lowers_the_kl_to_the_teacher_on_held_out_rows"),
    "OptimizerSpec.kind": (OBJ + "test_muon_takes_the_block_matrices_and_adamw_the_rest", OBJ_RESUME),
    "OptimizerSpec.muon_lr": (OBJ + "test_muon_takes_the_block_matrices_and_adamw_the_rest",),
    "OptimizerSpec.muon_momentum": (OBJ + "test_muon_takes_the_block_matrices_and_adamw_the_rest",),
    "StageSpec.lora": (OBJ + "test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba", OBJ_RESUME),
    "LoraSpec.r": (OBJ + "test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba",),
    "LoraSpec.alpha": (OBJ + "test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba",),
    "LoraSpec.dropout": (OBJ + "test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba",),
    "LoraSpec.targets": (OBJ + "test_lora_trains_only_adapters_and_exports_base_plus_scaled_ba",),
    "StageSpec.merge": ("test_merge.py::test_a_stage_merge_step_hands_the_blend_to_the_next_stage",),
    "MergeSpec.toward": ("test_merge.py::test_a_stage_merge_step_hands_the_blend_to_the_next_stage",
                         "test_merge.py::test_a_merge_toward_nothing_is_refused_when_the_recipe_is_read"),
    "MergeSpec.t": ("test_merge.py::test_a_stage_merge_step_hands_the_blend_to_the_next_stage",),
    "MergeSpec.method": ("test_merge.py::test_linear_merge_and_moving_average",),
    # --- benchmark sweeps and champion selection (tests/test_sweeps.py) ------------------------------------------
    "StageSpec.eval": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",),
    "StageSpec.select": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",
                         SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain"),
    "EvalSpec.benchmarks": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",
                            SWEEP + "test_bad_eval_sections_are_refused_by_the_schema"),
    "EvalSpec.data": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",
                      SWEEP + "test_missing_benchmark_file_is_one_line_at_check_time"),
    "EvalSpec.split": (SWEEP + "test_eval_section_reaches_the_eval_command",
                       SWEEP + "test_bad_eval_sections_are_refused_by_the_schema"),
    "EvalSpec.shots": (SWEEP + "test_eval_section_reaches_the_eval_command",
                       SWEEP + "test_missing_benchmark_file_is_one_line_at_check_time"),
    "EvalSpec.every": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",),
    "EvalSpec.limit": (SWEEP + "test_a_sweep_scores_checkpoints_and_hands_its_champion_on",),
    "EvalSpec.batch_size": (SWEEP + "test_eval_section_reaches_the_eval_command",),
    "EvalSpec.dtype": (SWEEP + "test_eval_section_reaches_the_eval_command",),
    "SelectSpec.metric": (SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain",),
    "SelectSpec.mode": (SWEEP + "test_mode_min_and_include_start",),
    "SelectSpec.guards": (SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain",),
    "SelectSpec.include_start": (SWEEP + "test_mode_min_and_include_start",),
    "SelectSpec.fallback": (SWEEP + "test_no_candidate_passes_the_guards_hands_on_the_start",),
    "SelectSpec.alpha": (SWEEP + "test_paired_test_within_noise_by_chance_and_significant_for_a_clear_difference",),
    "GuardSpec.metrics": (SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain",),
    "GuardSpec.max_drop_pp": (SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain",),
    "GuardSpec.max_failing": (SWEEP + "test_guard_rejects_the_best_headline_checkpoint_that_regresses_a_domain",),
    # --- block recipes (from the builders' tests) ------------------------------------------------------------
    "SftBlockRecipe.kind": ("test_builders_recipes.py::test_shipped_recipes_validate",),
    "SftBlockRecipe.name": ("test_builders_recipes.py::test_demo_recipe_builds",),
    "SftBlockRecipe.seed": ("test_builders_preference.py::test_real_preference_sets",),
    "SftBlockRecipe.tokenizer": ("test_builders_recipes.py::test_steel_recipe_offline",),
    "SftBlockRecipe.template": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",),
    "SftBlockRecipe.filters": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "SftBlockRecipe.sources": ("test_builders_recipes.py::test_demo_recipe_builds",),
    "SftBlockRecipe.self_cognition": ("test_builders_recipes.py::test_steel_recipe_offline",),
    "SftBlockRecipe.validation": ("test_builders_preference.py::test_pairs_are_filtered_as_units",),
    "SftBlockRecipe.loss": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",
                            "test_builders_preference.py::test_preference_block_refuses_loss_all_and_self_cognition"),
    "PreferenceBlockRecipe.kind": ("test_builders_preference.py::test_demo_preference_block",),
    "PreferenceBlockRecipe.pairs": ("test_builders_preference.py::test_pairs_are_filtered_as_units",),
    "PairFilter.drop_identical": ("test_builders_preference.py::test_t1b_ultrafeedback_recipe_builds_offline",),
    "PairFilter.min_score_gap": ("test_builders_preference.py::test_pairs_are_filtered_as_units",),
    "TokenizerSpec.name": ("test_tokenizers.py::test_local_tokenizer_json_and_folder",),
    "TokenizerSpec.eos_token": ("test_tokenizers.py::test_eos_handling",),
    "TokenizerSpec.add_special_tokens": ("test_tokenizers.py::test_added_special_tokens_survive_save_and_reload",),
    "TokenizerSpec.train": ("test_tokenizers.py::test_train_bpe",),
    "TokenizerTrainSpec.vocab_size": ("test_tokenizers.py::test_train_bpe",),
    "TokenizerTrainSpec.min_frequency": ("test_tokenizers.py::test_train_bpe",),
    "TokenizerTrainSpec.special_tokens": ("test_tokenizers.py::test_train_bpe",),
    "TokenizerTrainSpec.max_documents": ("test_tokenizers.py::test_train_bpe",),
    "TemplateRef.path": ("test_builders_templates.py::test_user_yaml_template",),
    "TemplateDef.name": ("test_builders_templates.py::test_user_yaml_template",),
    "TemplateDef.system": ("test_builders_importers.py::test_alpaca_input_join_and_history",),
    "TemplateDef.user": ("test_builders_templates.py::test_render_matches_seed",),
    "TemplateDef.assistant": ("test_builders_templates.py::test_render_matches_seed",),
    "TemplateDef.special_tokens": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",),
    "TemplateDef.max_turns": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",),
    "Filters.structure": ("test_builders_preference.py::test_demo_preference_block",),
    "StructureFilter.leading_assistant": (STRUCTURE + "test_trim_per_source_and_counted_in_the_manifest",
                                          STRUCTURE + "test_bad_leading_assistant_value_names_the_field"),
    "Filters.language": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "Filters.length": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",),
    "Filters.dedup": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "LanguageFilter.keep": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "LanguageFilter.by": ("test_builders_importers.py::test_infinity_instruct_documented_shape",),
    "LanguageFilter.rule": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "LanguageFilter.min_share": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "LanguageFilter.roles": ("test_builders_importers.py::test_real_shapes",),
    "LanguageFilter.label_values": ("test_builders_importers.py::test_infinity_instruct_documented_shape",),
    "LengthFilter.max_turns": ("test_builders_templates.py::test_built_shard_loss_exactly_on_replies",),
    "DedupFilter.exact": ("test_builders_preference.py::test_pairs_are_filtered_as_units",),
    "DedupFilter.near": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "DedupFilter.threshold": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "SftSource.name": ("test_builders_importers.py::test_bad_records_are_counted_drops",),
    "SftSource.paths": ("test_builders_importers.py::test_bad_records_are_counted_drops",),
    "SftSource.hf": ("test_builders_importers.py::test_recipe_errors_name_file_and_field",),
    "SftSource.shape": ("test_builders_importers.py::test_real_shapes",),
    "SftSource.language": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "SftSource.options": ("test_builders_importers.py::test_alpaca_input_join_and_history",),
    "SftSource.system": ("test_builders_importers.py::test_alpaca_input_join_and_history",),
    "SftSource.limit": ("test_builders_recipes.py::test_steel_recipe_offline",),
    "SftSource.sample": ("test_builders_recipes.py::test_steel_recipe_offline",),
    "SftSource.filters": ("test_builders_preference.py::test_demo_preference_block",),
    "SourceOverrides.structure": ("test_builders_preference.py::test_demo_preference_block",),
    "SourceOverrides.language": ("test_builders_zh_filter.py::test_zh_only_precision_recall_dedup_counts",),
    "SelfCognition.name": ("test_builders_recipes.py::test_self_cognition_substitution",),
    "SelfCognition.author": ("test_builders_recipes.py::test_self_cognition_substitution",),
    "SelfCognition.templates": ("test_builders_recipes.py::test_self_cognition_substitution",),
    "SelfCognition.data_dir": ("test_builders_recipes.py::test_self_cognition_substitution",),
    "SelfCognition.languages": ("test_builders_recipes.py::test_self_cognition_substitution",),
    "SelfCognition.repeat": ("test_builders_preference.py::test_demo_preference_block",),
    "Validation.fraction": ("test_builders_preference.py::test_pairs_are_filtered_as_units",),
    "TemplateDef.prefix": (BLOCK + "test_template_prefix_and_separator_are_no_loss_text_around_the_messages",),
    "TemplateDef.separator": (BLOCK + "test_template_prefix_and_separator_are_no_loss_text_around_the_messages",),
    "TemplateDef.default_system": (BLOCK + "test_template_default_system_fills_a_missing_system_message",),
    "TemplateDef.system_fallback": (BLOCK + "test_template_system_fallback_and_join_without_a_system_slot",),
    "TemplateDef.system_join": (BLOCK + "test_template_system_fallback_and_join_without_a_system_slot",),
    "StructureFilter.drop_ends_with_user": (BLOCK + "test_drop_ends_with_user_false_trims_the_trailing_user_turn",),
    "StructureFilter.drop_truncated": (BLOCK + "test_drop_truncated_drops_an_unclosed_code_fence",),
    "StructureFilter.require_alternation": (BLOCK + "test_require_alternation_drops_two_user_turns_in_a_row",),
    "LengthFilter.max_chars_user": (BLOCK + "test_character_limits_per_role_and_in_total",),
    "LengthFilter.max_chars_assistant": (BLOCK + "test_character_limits_per_role_and_in_total",),
    "LengthFilter.max_chars_total": (BLOCK + "test_character_limits_per_role_and_in_total",),
    "LengthFilter.min_chars_assistant": (BLOCK + "test_character_limits_per_role_and_in_total",),
    "SourceOverrides.length": (BLOCK + "test_source_length_override_replaces_the_block_length_filter",),
    "LanguageFilter.min_confidence": (BLOCK + "test_min_confidence_turns_an_unsure_detection_into_unknown",),
    "LanguageFilter.script_fallback": (BLOCK + "test_script_fallback_counts_low_confidence_han_text_as_chinese",),
    "LanguageFilter.ignore_unknown": (BLOCK + "test_ignore_unknown_takes_unsure_turns_out_of_the_share",),
    "LanguageFilter.min_turn_chars": (BLOCK + "test_min_turn_chars_leaves_short_turns_unjudged_under_every_turn",),
    "LanguageFilter.report_agreement": (BLOCK + "test_report_agreement_false_skips_fasttext_under_by_label",),
    "DedupFilter.shingle": (BLOCK + "test_shingle_length_decides_what_counts_as_near_duplicate",),
    "DedupFilter.num_perm": (BLOCK + "test_num_perm_sets_the_minhash_precision",),
    "SftSource.id_field": (BLOCK + "test_id_field_and_label_field_are_read_from_the_record",),
    "SftSource.label_field": (BLOCK + "test_id_field_and_label_field_are_read_from_the_record",),
    "PairFilter.score_fields": (BLOCK + "test_score_fields_name_where_min_score_gap_reads_the_scores",),
    "SelfCognition.role_zh": (BLOCK + "test_self_cognition_roles_and_source_name",),
    "SelfCognition.role_en": (BLOCK + "test_self_cognition_roles_and_source_name",),
    "SelfCognition.source_name": (BLOCK + "test_self_cognition_roles_and_source_name",),
    "SftBlockRecipe.description": (BLOCK + "test_descriptions_are_recorded_in_the_manifest",),
    "TemplateDef.description": (BLOCK + "test_descriptions_are_recorded_in_the_manifest",),
    "SftBlockRecipe.write_rejected": (BLOCK + "test_write_rejected_writes_every_drop_with_its_record",),
    "LengthFilter.max_tokens": (BLOCK + "test_token_cap_counts_content_or_the_rendered_document",),
    "LengthFilter.count_tokens_of": (BLOCK + "test_token_cap_counts_content_or_the_rendered_document",),
    "DedupFilter.scope": (BLOCK + "test_dedup_scope_source_keeps_the_same_rows_in_another_source",),
    "SftSource.sample_rate": (BLOCK + "test_sample_rate_keeps_that_share_after_filtering",),
    "Validation.min_documents": (BLOCK + "test_min_documents_raises_a_rounded_down_validation_split",),
    "MixRecipe.max_tokens_per_file": (BLOCK + "test_mix_file_size_cap_and_recorded_tier_and_module",),
    "SourceSpec.tier": (BLOCK + "test_mix_file_size_cap_and_recorded_tier_and_module",),
    "SourceSpec.module": (BLOCK + "test_mix_file_size_cap_and_recorded_tier_and_module",),
    # --- surgical block (kind: surgical) ----------------------------------------------------------------------
    "SurgicalBlockRecipe.kind": (SURGICAL + "test_ff_surgical_counts_are_exact_and_drops_carry_the_rewriters_reason",),
    "SurgicalBlockRecipe.sources": (SURGICAL + "test_ff_surgical_counts_are_exact_and_drops_carry_the_rewriters_reason",
                                    SURGICAL + "test_surgical_recipe_errors_name_the_field"),
    "SurgicalBlockRecipe.self_cognition": (SURGICAL + "test_surgical_recipe_errors_name_the_field",),
    "SurgicalSource.form": (SURGICAL + "test_ff_surgical_every_written_target_passes_its_checker",
                            SURGICAL + "test_a_shape_that_cannot_feed_the_form_is_refused_before_reading"),
    "SurgicalSource.spec": (SURGICAL + "test_ff_surgical_every_written_target_passes_its_checker",
                            SURGICAL + "test_surgical_recipe_errors_name_the_field"),
    "SurgicalSource.answer": (SURGICAL + "test_ff_surgical_yes_no_is_half_yes_half_no_in_each_split",
                              SURGICAL + "test_unquoted_yaml_yes_no_is_read_as_the_answer"),
    "SftBlockRecipe.on_error": (KINDS + "test_on_error_drop_counts_bad_rows_and_fail_stops_naming_the_record",),
    "SftBlockRecipe.pii": ("test_block_pii.py::test_pii_true_writes_what_the_mixes_pii_step_writes_and_counts_it",
                           "test_block_pii.py::test_pii_is_off_by_default"),
    "SftSource.count": (FF_REPAIR, REPAIR_SHORT),
    "Validation.count": (KINDS + "test_validation_count_holds_out_exactly_n", FF_REPAIR),
    "McqBlockRecipe.kind": (STEEL_MCQ,),
    "McqBlockRecipe.style": (STEEL_MCQ, STEEL_COT),
    "McqBlockRecipe.shuffle_options": (KINDS + "test_shuffle_options_keeps_the_answer_on_every_document",),
    "McqBlockRecipe.self_cognition": (NO_SELF_COGNITION,),
    "CotBlockRecipe.kind": (MEMPHIS,),
    "CotBlockRecipe.template": (COT_OPTIONS,),
    "CotBlockRecipe.answer_format": (MEMPHIS, COT_OPTIONS),
    "CotBlockRecipe.mcq_answer": (MEMPHIS, COT_OPTIONS),
    "CotBlockRecipe.self_cognition": (NO_SELF_COGNITION,),
    "RepairBlockRecipe.kind": (FF_REPAIR,),
    # --- distill block (kind: distill) ------------------------------------------------------------------------
    "DistillBlockRecipe.kind": (FF313_CHAIN,),
    "DistillBlockRecipe.pool": (FF313_CHAIN,),
    "DistillBlockRecipe.teacher": (FF313_CHAIN, DISTILL + "test_distill_spec_parses_a_teacher_by_kind"),
    "PoolSpec.total": (FF313_CHAIN, DISTILL + "test_share_counts_round_by_largest_remainder_to_the_exact_total"),
    "PoolSpec.shares": (FF313_CHAIN, DISTILL + "test_plan_pool_draws_exact_counts_of_questions_without_answers"),
    "PoolSpec.seed": (DISTILL + "test_plan_pool_draws_exact_counts_of_questions_without_answers",),
    "PoolSpec.on_short": (DISTILL + "test_plan_pool_names_a_short_source_or_takes_all_it_has",),
    "FileTeacherSpec.kind": (DISTILL + "test_file_teacher_answers_by_id_and_counts_its_drops",),
    "FileTeacherSpec.path": (DISTILL + "test_file_teacher_answers_by_id_and_counts_its_drops",),
    "FileTeacherSpec.name": (TEACHER_FIELDS,),
    "HfTeacherSpec.kind": (DISTILL + "test_hf_greedy_is_deterministic_and_equals_plain_generate",),
    "HfTeacherSpec.path": (DISTILL + "test_hf_teacher_refuses_a_folder_without_a_model",),
    "HfTeacherSpec.hub_id": (TEACHER_FIELDS, DISTILL + "test_distill_spec_parses_a_teacher_by_kind"),
    "HfTeacherSpec.name": (TEACHER_FIELDS,),
    "HfTeacherSpec.system": (TEACHER_FIELDS,),
    "HfTeacherSpec.do_sample": (DISTILL + "test_hf_sampling_is_reproducible_from_its_seed",),
    "HfTeacherSpec.temperature": (DISTILL + "test_hf_sampling_is_reproducible_from_its_seed",),
    "HfTeacherSpec.top_p": (DISTILL + "test_hf_sampling_is_reproducible_from_its_seed",),
    "HfTeacherSpec.seed": (DISTILL + "test_hf_sampling_is_reproducible_from_its_seed",),
    "HfTeacherSpec.max_new_tokens": (DISTILL + "test_hf_cache_resume_generates_only_missing_ids", FF313_CHAIN),
    "HfTeacherSpec.batch_size": (DISTILL + "test_hf_cache_resume_generates_only_missing_ids",),
    "HfTeacherSpec.dtype": (TEACHER_FIELDS,),
    "HfTeacherSpec.device": (TEACHER_FIELDS,),
    "MixedSourcesRecipe.style": (FF_REPAIR,),
    "MixedSourcesRecipe.shuffle_options": (REPAIR_OPTIONS,),
    "MixedSourcesRecipe.answer_format": (FF_REPAIR, REPAIR_OPTIONS),
    "MixedSourcesRecipe.mcq_answer": (REPAIR_OPTIONS,),
    "MixedSourcesRecipe.self_cognition": (NO_SELF_COGNITION,),
    # --- mix recipe -----------------------------------------------------------------------------------------
    "MixRecipe.kind": ("test_recipes.py::test_env_and_overrides",),
    "MixRecipe.name": ("test_cli_demo.py::test_demo_builds_a_complete_shard_set",),
    "MixRecipe.seed": ("test_planner.py::test_plan_is_seeded_and_split_is_by_document",),
    "MixRecipe.tokenizer": ("test_cli_demo.py::test_demo_builds_a_complete_shard_set",),
    "MixRecipe.budget_tokens": (MIX + "test_rerun_of_finished_build_is_a_no_op_and_other_recipe_is_refused",),
    "MixRecipe.validation_fraction": ("test_planner.py::test_plan_is_seeded_and_split_is_by_document",),
    "MixRecipe.tasks": ("test_sources.py::test_runs_under_datatrove_executor",),
    "MixRecipe.workers": ("test_filters.py::test_local_executor_with_workers",),
    "MixRecipe.sources": (MIX + "test_missing_unreadable_and_empty_sources",),
    "SourceSpec.name": (MIX + "test_missing_unreadable_and_empty_sources",),
    "SourceSpec.kind": (MIX + "test_unknown_kind_and_bad_weights_fail_before_work",),
    "SourceSpec.paths": (MIX + "test_gzip_inputs_read",),
    "SourceSpec.weight": (MIX + "test_unknown_kind_and_bad_weights_fail_before_work",),
    "SourceSpec.language": ("test_filters.py::test_zh_chain_uses_fineweb2_cmn_hani_settings",),
    "SourceSpec.filters": ("test_filters.py::test_filters_none_and_explicit_params",),
    "SourceSpec.text_field": ("test_sources.py::test_generic_formats_and_fields",),
    "SourceSpec.id_field": ("test_sources.py::test_generic_formats_and_fields",),
    "SourceSpec.format": ("test_sources.py::test_generic_formats_and_fields",),
    "SourceSpec.dataset": ("test_sources.py::test_hf_hub_constructs_and_fails_clearly_offline",),
    "SourceSpec.config": ("test_sources.py::test_hf_hub_constructs_and_fails_clearly_offline",),
    "SourceSpec.split": ("test_sources.py::test_hf_hub_constructs_and_fails_clearly_offline",
                         BLOCKSRC + "test_block_text_is_the_rendered_conversation"),
    "SourceSpec.recipe": (BLOCKSRC + "test_block_recipe_is_built_in_the_work_folder_then_read",),
    "SourceSpec.block_text": (BLOCKSRC + "test_block_text_is_the_rendered_conversation",),
    "SourceSpec.limit": ("test_sources.py::test_limit",),
    "MixRecipe.on_empty": (OUTPUTS + "test_on_empty_skip_renormalises_and_says_so",
                           OUTPUTS + "test_bad_on_empty_and_write_text_values_name_the_field"),
    "MixRecipe.write_text": (OUTPUTS + "test_text_export_loads_with_datasets_and_matches_the_shards",),
    "SourceSpec.on_empty": (OUTPUTS + "test_on_empty_skip_renormalises_and_says_so",),
    "FilterChain.chain": (WORDS + "test_named_chains_build_for_en_and_zh",
                          WORDS + "test_default_chain_resolves_by_kind"),
    "FilterChain.pii": ("test_pii.py::test_pii_is_the_last_step_of_every_named_chain_and_can_be_turned_off",
                        "test_pii.py::test_mix_manifest_counts_replacements_and_records_opt_out"),
    "FilterChain.word_splitter": (WORDS + "test_word_splitter_setting_per_chain_and_per_step",
                                  WORDS + "test_fineweb_edu_documents_kept_with_fineweb2024"),
    "FilterSpec.step": ("test_filters.py::test_unknown_param_and_step_errors",),
    "FilterSpec.params": ("test_filters.py::test_filters_none_and_explicit_params",),
    # --- mix recipe: dedup --------------------------------------------------------------------------------------
    "MixRecipe.dedup": (DEDUP + "test_mix_drops_duplicates_before_counting_and_records_them",),
    "DedupSpec.enabled": (DEDUP + "test_dedup_off_keeps_every_document_and_says_so",),
    "DedupSpec.exact": (DEDUP_OFF,),
    "DedupSpec.minhash": (DEDUP_OFF, SIGNATURE),
    "DedupSpec.sentences": (SPANS,),
    "DedupSpec.scope": (DEDUP + "test_scope_source_keeps_cross_source_duplicates_and_skip_sources_keeps_a_source_whole",),
    "DedupSpec.keep": (DEDUP + "test_keep_order_lets_the_first_listed_source_keep_a_cross_source_duplicate",
                       DEDUP + "test_planted_near_and_exact_duplicates_go_and_originals_stay"),
    "DedupSpec.tier_order": (DEDUP + "test_keep_tier_orders_sources_by_tier_order_then_recipe_order",
                             DEDUP_REFUSED),
    "DedupSpec.skip_sources": (DEDUP + "test_scope_source_keeps_cross_source_duplicates_and_skip_sources_keeps_a_source_whole",
                               DEDUP_REFUSED),
    "MinhashSpec.enabled": (DEDUP_OFF,),
    "MinhashSpec.n_grams": (SIGNATURE, SIGNATURE_SETTINGS),
    "MinhashSpec.num_buckets": (SIGNATURE, SIGNATURE_SETTINGS),
    "MinhashSpec.hashes_per_bucket": (SIGNATURE, SIGNATURE_SETTINGS),
    "MinhashSpec.seed": (SIGNATURE, SIGNATURE_SETTINGS),
    "SentenceDedupSpec.enabled": (SPANS,),
    "SentenceDedupSpec.n_sentences": (SPANS,),
    "SentenceDedupSpec.min_doc_words": (SPANS,),
    "SentenceDedupSpec.sources": (SPANS, DEDUP_REFUSED),
    # --- decontamination (schemas/decontam.py), in mix and block recipes ---------------------------------------
    "MixRecipe.decontaminate": (DECONT + "test_mix_drops_a_planted_document_with_benchmark_and_item",),
    "SftBlockRecipe.decontaminate": (DECONT + "test_sft_block_from_rasbt_reports_and_drops_its_mmlu_question",
                                     DECONT_ENV),
    "DecontamSpec.enabled": (DECONT_ENV,),
    "DecontamSpec.benchmarks": (DECONT + "test_benchmark_paths_resolve_names_skip_train_and_fail_in_one_line",),
    "DecontamSpec.files": (DECONT + "test_sft_block_from_rasbt_reports_and_drops_its_mmlu_question",),
    "DecontamSpec.action": (DECONT + "test_sft_block_from_rasbt_reports_and_drops_its_mmlu_question",
                            DECONT + "test_mix_drops_a_planted_document_with_benchmark_and_item"),
    "DecontamSpec.ngram": (DECONT_LEN,),
    "DecontamSpec.min_ngram": (DECONT_LEN,),
    "DecontamSpec.min_overlap": (DECONT_LEN,),
    "DecontamSpec.index": (DECONT + "test_mix_drops_a_planted_document_with_benchmark_and_item",),
    "BenchmarkFiles.name": (DECONT + "test_sft_block_from_rasbt_reports_and_drops_its_mmlu_question",),
    "BenchmarkFiles.paths": (DECONT + "test_benchmark_paths_resolve_names_skip_train_and_fail_in_one_line",),
    "BenchmarkFiles.shape": (DECONT + "test_benchmark_paths_resolve_names_skip_train_and_fail_in_one_line",),
    # --- executors (schemas/mix_recipe.py ExecutorSpec, pipelines/executors.py) ---------------------------------
    "MixRecipe.executor": (EXEC_SLURM, EXEC_RAY),
    "ExecutorSpec.kind": (EXEC_SLURM, EXEC_RAY),
    "ExecutorSpec.concurrency": (EXEC_SLURM,),
    "ExecutorSpec.cpus_per_task": (EXEC_SLURM,),
    "ExecutorSpec.mem_per_cpu_gb": (EXEC_SLURM,),
    "ExecutorSpec.partition": (EXEC_SLURM, EXEC + "test_slurm_without_partition_is_a_one_line_recipe_error"),
    "ExecutorSpec.time": (EXEC_SLURM,),
    "ExecutorSpec.qos": (EXEC_SLURM,),
    "ExecutorSpec.env_command": (EXEC_SLURM,),
    "ExecutorSpec.sbatch_args": (EXEC_SLURM,),
    "ExecutorSpec.venv_path": (EXEC + "test_slurm_venv_and_array_limit_reach_the_script",),
    "ExecutorSpec.max_array_size": (EXEC + "test_slurm_venv_and_array_limit_reach_the_script",),
    "ExecutorSpec.poll_seconds": (EXEC + "test_a_failed_slurm_phase_stops_the_driver_naming_the_phase",),
    "ExecutorSpec.placement_timeout_s": (EXEC + "test_ray_task_that_cannot_be_placed_fails_the_phase_in_one_line",),
    # --- self-teaching recipe (schemas/selfteach_recipe.py) ----------------------------------------------------
    "SelfTeachRecipe.name": (ST_SETTINGS,),
    "SelfTeachRecipe.seed": (ST_SETTINGS,),
    "SelfTeachRecipe.model": (ST_SETTINGS,),
    "SelfTeachRecipe.engine": (ST_SETTINGS,),
    "SelfTeachRecipe.self_teach": (ST_ROUNDS,),
    "SelfTeachRecipe.stage": (ST_SETTINGS, ST + "test_recipe_errors_name_the_field"),
    "SelfTeachSpec.init": (ST_ROUNDS,),
    "SelfTeachSpec.rounds": (ST_ROUNDS, ST + "test_a_changed_recipe_is_refused_but_more_rounds_are_not"),
    "SelfTeachSpec.questions": (ST_QUESTIONS,),
    "SelfTeachSpec.generation": (ST_SETTINGS,),
    "SelfTeachSpec.pairs": (ST + "test_pairs_use_each_distinct_reply_once", ST_SETTINGS),
    "SelfTeachSpec.merge": (ST_AVERAGE,),
    "QuestionSpec.block": (ST + "test_the_question_block_must_be_a_tinycot_block",),
    "QuestionSpec.sources": (ST_QUESTIONS,),
    "QuestionSpec.limit": (ST_QUESTIONS,),
    "GenerationSpec.samples": (ST_ROUNDS, ST + "test_recipe_errors_name_the_field"),
    "GenerationSpec.temperature": (ST_SETTINGS,),
    "GenerationSpec.top_p": (ST_SETTINGS,),
    "GenerationSpec.max_new_tokens": (ST_SETTINGS,),
    "GenerationSpec.batch_size": (ST_SETTINGS,),
    "GenerationSpec.dtype": (ST_SETTINGS, TEACHER_FIELDS),
    "GenerationSpec.device": (ST_SETTINGS, TEACHER_FIELDS),
    "PairSpec.max_per_question": (ST + "test_pairs_use_each_distinct_reply_once",),
    "PairSpec.validation_fraction": (ST_SETTINGS,),
    "AverageSpec.t": (ST_AVERAGE,),
    "AverageSpec.toward": (ST_AVERAGE,),
    "AverageSpec.method": (ST_AVERAGE,),
}

# Accepted fields with no test that shows their effect yet: what the code does with each. Known gaps, for the
# owners of the builders and the mix to close (a test) or remove (refuse the field).
NO_BEHAVIOUR_TEST: dict[str, str] = {
    "ExecutorSpec.address": "ray: ray.init(address=...) when no cluster is initialised in the process (the tests "
                            "start a local one; joining another needs one running)",
    "ExecutorSpec.task_timeout_s": "ray: datatrove RayPipelineExecutor's time= (a task running longer is killed "
                                   "and resubmitted, up to 3 times)",
}


def models_in(annotation) -> typing.Iterator[type[BaseModel]]:
    """The pydantic models inside a field's annotation (through list, dict, Union, Literal, ...)."""
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in typing.get_args(annotation):
        yield from models_in(arg)


def declared_fields(roots=RECIPE_MODELS) -> set[str]:
    """``Model.field`` for every field of every model reachable from the recipe models, keyed by the model that
    declares it (an inherited field is listed once, under its base)."""
    out, seen, todo = set(), set(), list(roots)
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            owner = next(c for c in model.__mro__ if name in c.__dict__.get("__annotations__", {}))
            out.add(f"{owner.__name__}.{name}")
            todo.extend(models_in(field.annotation))
    return out


@cache
def functions_in(filename: str) -> set[str]:
    path = TESTS / filename
    if not path.is_file():
        return set()
    return {n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.FunctionDef)}


def test_every_recipe_field_is_in_the_table():
    fields = declared_fields()
    missing = sorted(fields - FIELD_TESTS.keys() - NO_BEHAVIOUR_TEST.keys())
    assert not missing, f"fields with neither a behaviour test nor an entry in NO_BEHAVIOUR_TEST: {missing}"
    stale = sorted((FIELD_TESTS.keys() | NO_BEHAVIOUR_TEST.keys()) - fields)
    assert not stale, f"table rows for fields that no longer exist: {stale}"
    assert not FIELD_TESTS.keys() & NO_BEHAVIOUR_TEST.keys()


def test_every_named_test_exists():
    for field, tests in FIELD_TESTS.items():
        assert tests, field
        for ref in tests:
            filename, _, name = ref.partition("::")
            assert name in functions_in(filename), f"{field}: {ref} is not a test"


def test_no_train_recipe_field_lacks_a_test():
    train = declared_fields((TrainRecipe,))
    assert not train & NO_BEHAVIOUR_TEST.keys()


# ---------------------------------------------------------------------------------------------------------------
# trainer fields that had no test


def stage(**over) -> StageSpec:
    return StageSpec(name="s", data={"sets": [{"path": "x"}]}, max_steps=10, **over)


def test_engine_fields_reach_the_deepspeed_config(tmp_path):
    from shardsmith.trainer.engine import deepspeed_config

    extra = tmp_path / "ds.json"
    extra.write_text(json.dumps({"zero_optimization": {"stage3_max_live_parameters": 7}, "steps_per_print": 5}))
    spec = EngineSpec(zero_stage=3, precision="bf16", overlap_comm=True, reduce_bucket_size=123,
                      allgather_bucket_size=456, config_file=str(extra), config={"steps_per_print": 9})
    cfg = deepspeed_config(stage(micro_batch_size=3, grad_accum=4, optimizer={"grad_clip": 0.5}), spec)
    z = cfg["zero_optimization"]
    assert (z["stage"], z["overlap_comm"], z["reduce_bucket_size"], z["allgather_bucket_size"]) == (3, True, 123, 456)
    assert z["stage3_max_live_parameters"] == 7  # config_file
    assert cfg["steps_per_print"] == 9  # config beats config_file
    assert cfg["bf16"] == {"enabled": True} and "fp16" not in cfg
    assert (cfg["train_micro_batch_size_per_gpu"], cfg["gradient_accumulation_steps"]) == (3, 4)
    assert cfg["gradient_clipping"] == 0.5
    plain = deepspeed_config(stage(optimizer={"grad_clip": 0.5}), EngineSpec(zero_stage=0, precision="fp32"))
    assert plain["gradient_clipping"] == 0.0 and "bf16" not in plain  # the engine clips itself on this path
    assert plain["zero_optimization"] == {"stage": 0}


def test_schedule_fields_shape_the_lr():
    from shardsmith.trainer.schedules import lr_at

    ratio = ScheduleSpec(kind="constant", warmup_ratio=0.2)
    assert [lr_at(s, 10, 1.0, ratio) for s in (0, 1, 2)] == pytest.approx([0.5, 1.0, 1.0])
    shapes = {shape: lr_at(7, 10, 2.0, ScheduleSpec(kind="wsd", decay_ratio=0.5, decay_shape=shape, min_lr_ratio=0))
              for shape in ("linear", "sqrt", "cosine")}
    t = 3 / 5  # step 7 is the 3rd of 5 decay steps
    assert shapes == pytest.approx({"linear": 2 * (1 - t), "sqrt": 2 * (1 - t**0.5),
                                    "cosine": 2 * 0.5 * (1 + math.cos(math.pi * t))})


def test_model_fields_reach_the_hf_config(tmp_path):
    import sys

    sys.path.insert(0, str(TESTS))
    import trainer_fixtures as F

    from shardsmith.trainer.models import build_config

    manifest = ShardManifest.load(F.pretrain_set(tmp_path / "pt", F.build_tokenizer(tmp_path / "tok"), 4, 2))
    cfg = build_config("tiny-gpt2", None, {"n_layer": 3}, manifest, 100, "eager")
    assert manifest.tokenizer.vocab_size % 100 and cfg.vocab_size == -(-manifest.tokenizer.vocab_size // 100) * 100
    assert (cfg.n_layer, cfg._attn_implementation) == (3, "eager")
    cfg.save_pretrained(tmp_path / "m")
    from_path = build_config(None, str(tmp_path / "m"), {}, manifest, 1, "sdpa")
    assert (from_path.n_layer, from_path.vocab_size) == (3, manifest.tokenizer.vocab_size)  # rows: the manifest's


def test_single_choice_fields_accept_only_their_value():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="adamw"):
        stage(optimizer={"name": "sgd"})


@pytest.mark.parametrize("overrides,message", [
    (["stages.dpo.dpo.loss_type=ipo", "stages.dpo.dpo.label_smoothing=0.1"],
     r"stages.2.dpo.*dpo.label_smoothing applies to loss_type sigmoid only"),
    (["stages.dpo.dpo.loss_type=hinge", "stages.dpo.dpo.label_smoothing=0.2"], r"'hinge' ignores it"),
    (["stages.sft.mixce_ratio=0.5"], r"stages.1.*mixce_ratio applies to objective mixce only"),
    (["stages.sft.schedule.decay_shape=sqrt"], r"schedule.decay_shape does nothing for kind 'cosine'"),
    (["stages.sft.schedule.kind=constant"], r"schedule.min_lr_ratio does nothing for kind 'constant'"),
    (["engine.zero_stage=0", "engine.offload_optimizer=true"], r"engine.offload_optimizer needs zero_stage 1, 2 or 3"),
    (["engine.zero_stage=0", "engine.reduce_bucket_size=10"], r"engine.reduce_bucket_size applies to ZeRO stages"),
    (["stages.sft.keep_checkpoints=3", "stages.sft.save_every=null"], r"keep_checkpoints does nothing without"),
    (["model.path=/somewhere"], r"model.preset and model.path both given"),
])
def test_inert_settings_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(RecipeError, match=message) as err:
        load_recipe(TrainRecipe, str(DEMO), overrides)
    assert len(str(err.value).strip().splitlines()) == 2  # "FILE: invalid recipe (1 problem):" + the field's line


def test_stop_log_and_checkpoint_fields_shape_a_run(tmp_path):
    """stop_at_step ends the stage early on the full schedule; log_every thins metrics; save_every +
    keep_checkpoints keep the newest checkpoints; validation_split picks the split evaluated; the stage's seed
    initialises the model."""
    import sys

    sys.path.insert(0, str(TESTS))
    import trainer_fixtures as F

    from shardsmith.trainer.runner import train

    tok = F.build_tokenizer(tmp_path / "tok")
    pt = F.pretrain_set(tmp_path / "pt", tok, n_train=40, n_val=6)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""
name: fields
notes: a note
model: {{preset: tiny-gpt2}}
engine: {{zero_stage: 1, precision: fp32}}
stages:
  - name: a
    data: {{sets: [{{path: {pt}}}], validation_split: train, val_rows: 2}}
    seq_len: 32
    micro_batch_size: 2
    max_steps: 8
    stop_at_step: 5
    log_every: 2
    save_every: 1
    keep_checkpoints: 2
    eval_every: 5
    seed: 77
""")
    out = tmp_path / "out"
    train(str(recipe), str(out))
    rows = [json.loads(x) for x in (out / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [2, 4, 5]
    info = json.loads((out / "a" / "stage.json").read_text())
    assert (info["total_steps"], info["stop_at_step"], info["steps_done"]) == (8, 5, 5)
    ckpts = sorted(p.name for p in (out / "a" / "ckpt").glob("step-*"))
    assert ckpts == ["step-3", "step-4"]  # step 5 is the stop: exported, not checkpointed; two kept
    recorded = json.loads((out / "recipe.json").read_text())["recipe"]
    assert (recorded["name"], recorded["notes"]) == ("fields", "a note")  # name and notes: recorded with the run

    from shardsmith.trainer.data import StageData
    from shardsmith.trainer.schedules import lr_at

    assert rows[-1]["lr"] == pytest.approx(lr_at(4, 8, 3e-4, ScheduleSpec()))  # the 8-step schedule, cut at 5
    val = {split: StageData([str(pt)], [1.0], seq_len=32, seed=77, sampling="random", packing=False,
                            document_masking=False, micro=2, accum=1, rank=0, world=1, val_split=split,
                            val_rows=2, objective="clm").validation_batches()[0].input_ids.tolist()
           for split in ("train", "validation")}
    assert val["train"] != val["validation"]

    from shardsmith.trainer.export import weights_digest
    from shardsmith.trainer.models import build_config, new_model

    config = build_config("tiny-gpt2", None, {}, ShardManifest.load(pt), 1, "sdpa")
    digests = {seed: weights_digest(new_model(config, seed).state_dict()) for seed in (77, 1234)}
    assert info["init_digest"] == digests[77] != digests[1234]  # the stage's seed, not the recipe's (1234)
