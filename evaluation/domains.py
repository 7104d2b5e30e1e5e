"""Subject -> macro-domain maps for the per-domain accuracy rows.

MMLU: lm-evaluation-harness's MMLU groups (``lm_eval/tasks/mmlu/default/mmlu_*.yaml``, tag ``mmlu_{domain}_tasks``),
copied as a literal so evaluation does not need lm-eval installed; ``tests/test_eval_domains.py`` reads lm-eval's
YAML files and checks this table equals them.

CMMLU: haonan-li/CMMLU ``src/categories.py`` (commit 7aa0f6f4), copied as :data:`CMMLU_SUBCATEGORIES` (subject ->
subcategories) and :data:`CMMLU_CATEGORIES` (category -> subcategories); each subject sits under the category of its
first subcategory. CMMLU's fifth category "China specific" (subcategory ``china specific``, 15 subjects that also sit
in one of the four) overlaps the others, so it is not part of the partition :data:`CMMLU_DOMAINS` but an extra group,
:data:`CMMLU_EXTRA_DOMAINS`, reported beside the four. lm-eval has no CMMLU groups.

C-Eval: hkust-nlp/ceval ``subject_mapping.json`` (third field: STEM / Social Science / Humanities / Other), copied as
:data:`CEVAL_CATEGORY`; ``clinical_medicine`` has no third field in that file and sits under "Other" as in the C-Eval
paper's table.

Both tables are built from their source's mapping by one helper, :func:`domain_table`. The tests check both cover
exactly the subject files in ``../shared/data``.
"""

from __future__ import annotations

MMLU_DOMAINS: dict[str, tuple[str, ...]] = {
    "stem": (
        "abstract_algebra", "anatomy", "astronomy", "college_biology", "college_chemistry", "college_computer_science",
        "college_mathematics", "college_physics", "computer_security", "conceptual_physics", "electrical_engineering",
        "elementary_mathematics", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
        "high_school_mathematics", "high_school_physics", "high_school_statistics", "machine_learning",
    ),
    "humanities": (
        "formal_logic", "high_school_european_history", "high_school_us_history", "high_school_world_history",
        "international_law", "jurisprudence", "logical_fallacies", "moral_disputes", "moral_scenarios", "philosophy",
        "prehistory", "professional_law", "world_religions",
    ),
    "social_sciences": (
        "econometrics", "high_school_geography", "high_school_government_and_politics", "high_school_macroeconomics",
        "high_school_microeconomics", "high_school_psychology", "human_sexuality", "professional_psychology",
        "public_relations", "security_studies", "sociology", "us_foreign_policy",
    ),
    "other": (
        "business_ethics", "clinical_knowledge", "college_medicine", "global_facts", "human_aging", "management",
        "marketing", "medical_genetics", "miscellaneous", "nutrition", "professional_accounting",
        "professional_medicine", "virology",
    ),
}



# --- CMMLU: src/categories.py of haonan-li/CMMLU ----------------------------------------------------------------
CMMLU_SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "agronomy": ("other",), "anatomy": ("biology",), "ancient_chinese": ("linguistics", "china specific"),
    "arts": ("arts",), "astronomy": ("physics",), "business_ethics": ("business",),
    "chinese_civil_service_exam": ("politics", "china specific"), "chinese_driving_rule": ("other", "china specific"),
    "chinese_food_culture": ("culture", "china specific"), "chinese_foreign_policy": ("politics", "china specific"),
    "chinese_history": ("history", "china specific"), "chinese_literature": ("literature", "china specific"),
    "chinese_teacher_qualification": ("education", "china specific"), "college_actuarial_science": ("math",),
    "college_education": ("education",), "college_engineering_hydrology": ("engineering",), "college_law": ("law",),
    "college_mathematics": ("math",), "college_medical_statistics": ("statistics",), "clinical_knowledge": ("other",),
    "college_medicine": ("other",), "computer_security": ("other",), "conceptual_physics": ("physics",),
    "construction_project_management": ("other", "china specific"), "economics": ("economics",),
    "education": ("education",), "elementary_chinese": ("linguistics", "china specific"),
    "elementary_commonsense": ("other", "china specific"), "elementary_information_and_technology": ("other",),
    "electrical_engineering": ("engineering",), "elementary_mathematics": ("math",),
    "ethnology": ("culture", "china specific"), "food_science": ("other",), "genetics": ("biology",),
    "global_facts": ("global",), "high_school_biology": ("biology",), "high_school_chemistry": ("chemistry",),
    "computer_science": ("computer science",), "high_school_geography": ("geography",),
    "high_school_mathematics": ("math",), "high_school_physics": ("physics",),
    "high_school_politics": ("politics", "china specific"), "human_sexuality": ("other",),
    "international_law": ("law",), "journalism": ("sociology",), "jurisprudence": ("law",),
    "legal_and_moral_basis": ("other",), "logical": ("philosophy",), "machine_learning": ("computer science",),
    "management": ("business",), "marketing": ("business",), "marxist_theory": ("philosophy",),
    "modern_chinese": ("linguistics", "china specific"), "nutrition": ("other",), "philosophy": ("philosophy",),
    "professional_accounting": ("business",), "professional_law": ("law",), "professional_medicine": ("other",),
    "professional_psychology": ("psychology",), "public_relations": ("politics",), "security_study": ("politics",),
    "sociology": ("culture",), "sports_science": ("other",),
    "traditional_chinese_medicine": ("other", "china specific"), "virology": ("biology",),
    "world_history": ("history",), "world_religions": ("global",),
}

CMMLU_CATEGORIES: dict[str, tuple[str, ...]] = {
    "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering", "statistics"),
    "Humanities": ("history", "philosophy", "law", "arts", "literature", "global"),
    "Social Science": ("linguistics", "business", "politics", "culture", "economics", "geography", "psychology",
                       "education", "sociology"),
    "Other": ("other",),
    "China specific": ("china specific",),
}

# --- C-Eval: the third field of subject_mapping.json of hkust-nlp/ceval -----------------------------------------
CEVAL_CATEGORY: dict[str, str] = {
    **dict.fromkeys((
        "advanced_mathematics", "college_chemistry", "college_physics", "college_programming",
        "computer_architecture", "computer_network", "discrete_mathematics", "electrical_engineer",
        "high_school_biology", "high_school_chemistry", "high_school_mathematics", "high_school_physics",
        "metrology_engineer", "middle_school_biology", "middle_school_chemistry", "middle_school_mathematics",
        "middle_school_physics", "operating_system", "probability_and_statistics", "veterinary_medicine"), "STEM"),
    **dict.fromkeys((
        "art_studies", "chinese_language_and_literature", "high_school_chinese", "high_school_history",
        "ideological_and_moral_cultivation", "law", "legal_professional", "logic", "middle_school_history",
        "modern_chinese_history", "professional_tour_guide"), "Humanities"),
    **dict.fromkeys((
        "business_administration", "college_economics", "education_science", "high_school_geography",
        "high_school_politics", "mao_zedong_thought", "marxism", "middle_school_geography",
        "middle_school_politics", "teacher_qualification"), "Social Science"),
    **dict.fromkeys((
        "accountant", "basic_medicine", "civil_servant", "clinical_medicine",  # clinical_medicine: no field, paper
        "environmental_impact_assessment_engineer", "fire_engineer", "physician", "plant_protection",
        "sports_science", "tax_accountant", "urban_and_rural_planner"), "Other"),
}

DOMAIN_KEYS = {"STEM": "stem", "Humanities": "humanities", "Social Science": "social_sciences", "Other": "other",
               "China specific": "china_specific"}
"""The sources' category names -> the domain keys results.json uses (MMLU's, from lm-eval)."""


def domain_table(subject_category: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """``{subject: source category name}`` -> ``{domain key: subjects, sorted}``, domains in :data:`DOMAIN_KEYS`
    order (the one table shape CMMLU and C-Eval share)."""
    table: dict[str, list[str]] = {key: [] for key in DOMAIN_KEYS.values()}
    for subject, category in subject_category.items():
        table[DOMAIN_KEYS[category]].append(subject)
    return {key: tuple(sorted(subjects)) for key, subjects in table.items() if subjects}


def _cmmlu_category(subcategory: str) -> str:
    return next(cat for cat, subs in CMMLU_CATEGORIES.items() if subcategory in subs)


CMMLU_DOMAINS = domain_table({s: _cmmlu_category(subs[0]) for s, subs in CMMLU_SUBCATEGORIES.items()})
CMMLU_EXTRA_DOMAINS = domain_table({s: "China specific" for s, subs in CMMLU_SUBCATEGORIES.items()
                                    if "china specific" in subs})
"""Groups that overlap the partition: reported beside the four domains (a subject counts in both)."""
CEVAL_DOMAINS = domain_table(CEVAL_CATEGORY)


def subject_to_domain(domains: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Invert a ``{domain: subjects}`` table."""
    return {subject: domain for domain, subjects in domains.items() for subject in subjects}
