"""Subject -> macro-domain maps for the per-domain accuracy rows.

MMLU: lm-evaluation-harness's MMLU groups (``lm_eval/tasks/mmlu/default/mmlu_*.yaml``, tag ``mmlu_{domain}_tasks``),
copied as a literal so evaluation does not need lm-eval installed; ``tests/test_eval_domains.py`` reads lm-eval's
YAML files and checks this table equals them.

CMMLU: haonan-li/CMMLU ``src/categories.py`` (subject -> subcategories -> categories), each subject under the category
of its first subcategory; CMMLU's fifth, overlapping group "China specific" (15 subjects that also sit in one of the
four) is not a row here. lm-eval has no CMMLU groups.

C-Eval: hkust-nlp/ceval ``subject_mapping.json`` (third field: STEM / Social Science / Humanities / Other);
``clinical_medicine`` has no third field in that file and sits under "other" as in the C-Eval paper's table.
The test checks both tables cover exactly the subject files in ``../shared/data``.
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


CMMLU_DOMAINS: dict[str, tuple[str, ...]] = {
    "stem": (
        "anatomy", "astronomy", "college_actuarial_science", "college_engineering_hydrology",
        "college_mathematics", "college_medical_statistics", "computer_science", "conceptual_physics",
        "electrical_engineering", "elementary_mathematics", "genetics", "high_school_biology",
        "high_school_chemistry", "high_school_mathematics", "high_school_physics", "machine_learning",
        "virology",
    ),
    "humanities": (
        "arts", "chinese_history", "chinese_literature", "college_law", "global_facts", "international_law",
        "jurisprudence", "logical", "marxist_theory", "philosophy", "professional_law", "world_history",
        "world_religions",
    ),
    "social_sciences": (
        "ancient_chinese", "business_ethics", "chinese_civil_service_exam", "chinese_food_culture",
        "chinese_foreign_policy", "chinese_teacher_qualification", "college_education", "economics",
        "education", "elementary_chinese", "ethnology", "high_school_geography", "high_school_politics",
        "journalism", "management", "marketing", "modern_chinese", "professional_accounting",
        "professional_psychology", "public_relations", "security_study", "sociology",
    ),
    "other": (
        "agronomy", "chinese_driving_rule", "clinical_knowledge", "college_medicine", "computer_security",
        "construction_project_management", "elementary_commonsense", "elementary_information_and_technology",
        "food_science", "human_sexuality", "legal_and_moral_basis", "nutrition", "professional_medicine",
        "sports_science", "traditional_chinese_medicine",
    ),
}

CEVAL_DOMAINS: dict[str, tuple[str, ...]] = {
    "stem": (
        "advanced_mathematics", "college_chemistry", "college_physics", "college_programming",
        "computer_architecture", "computer_network", "discrete_mathematics", "electrical_engineer",
        "high_school_biology", "high_school_chemistry", "high_school_mathematics", "high_school_physics",
        "metrology_engineer", "middle_school_biology", "middle_school_chemistry", "middle_school_mathematics",
        "middle_school_physics", "operating_system", "probability_and_statistics", "veterinary_medicine",
    ),
    "humanities": (
        "art_studies", "chinese_language_and_literature", "high_school_chinese", "high_school_history",
        "ideological_and_moral_cultivation", "law", "legal_professional", "logic", "middle_school_history",
        "modern_chinese_history", "professional_tour_guide",
    ),
    "social_sciences": (
        "business_administration", "college_economics", "education_science", "high_school_geography",
        "high_school_politics", "mao_zedong_thought", "marxism", "middle_school_geography",
        "middle_school_politics", "teacher_qualification",
    ),
    "other": (
        "accountant", "basic_medicine", "civil_servant", "clinical_medicine",
        "environmental_impact_assessment_engineer", "fire_engineer", "physician", "plant_protection",
        "sports_science", "tax_accountant", "urban_and_rural_planner",
    ),
}


def subject_to_domain(domains: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Invert a ``{domain: subjects}`` table."""
    return {subject: domain for domain, subjects in domains.items() for subject in subjects}
