"""Our own few-shot exemplars for the four benchmarks, in the formats of the paper's teacher prompts.

The paper never released its exemplars; only their format can be read off the released completions
(datasets/README.md). These are written for this project. CQA and SVAMP exemplars are questions of the
release's train split (their `id` says which; tests check question, choices and gold label against the
data), with rationales of our own. ANLI and e-SNLI have no train inputs here, so their premises and
hypotheses are invented: taking them from the validation pool would put prompt exemplars into the
student's training and model-selection data.

Each exemplar holds the fields the task's input template reads, a `rationale` and the `label` (the
text the task's parser reads back out of the rendered answer; tests check that it does, and that the
label is right).
"""

from __future__ import annotations

CQA = [
    {"id": "1edb1b7de245d2dd41175bffb7138c3d",
     "question": "A continent is a large area of land, but the globe is mostly covered by an what?",
     "choices": ["ocean", "australia", "asia", "continent", "island"],
     "rationale": "The question sets land against whatever covers most of the globe. Most of the earth's "
                  "surface is water, and of the above choices only an ocean is a body of water.",
     "label": "ocean"},
    {"id": "8c272944bc4a1906bbb866d49976eb0d",
     "question": "A cow farm has quite the smell, that's why they tend to be located in a remote what?",
     "choices": ["corral", "nursery rhyme", "northern california", "rural area", "barnyard"],
     "rationale": "A smelly farm bothers its neighbours, so farms are put far away from people. Of the above "
                  "choices, a rural area is the remote kind of place with few people around.",
     "label": "rural area"},
    {"id": "b9e9d957b9cdc73d0a9fbfcae383f0ca",
     "question": "A disposable razor is aptly named, it ends up where?",
     "choices": ["supermarket", "hotel room", "garbage", "closet", "medicine cabinet"],
     "rationale": "Something disposable is made to be thrown away once it has been used. Of the above "
                  "choices, the place where thrown-away things end up is the garbage.",
     "label": "garbage"},
    {"id": "437579f0669e62ab1a22ceef961f86dd",
     "question": "A flask is a container can, it is made to hold what?",
     "choices": ["fire", "store", "contain food", "garage", "liquid"],
     "rationale": "A flask is a bottle with a narrow neck, made for drinks and other fluids. Of the above "
                  "choices, only liquid is something a flask is made to hold.",
     "label": "liquid"},
    {"id": "4cf90bfc1572ac6d8e6db588e93da7c4",
     "question": "Where would a gazelle like to run?",
     "choices": ["uphill", "open field", "asia", "encyclopedia", "steppe"],
     "rationale": "Gazelles are fast runners that need wide, flat ground to run on. Of the above choices, "
                  "an open field gives them that room.",
     "label": "open field"},
    {"id": "f286158635ab991d73952a2ee6a23778",
     "question": "Where can one use opera glasses?",
     "choices": ["theme park", "antique store", "theater", "woman's purse", "museum"],
     "rationale": "Opera glasses are small binoculars for watching a stage from a seat in the audience. Of "
                  "the above choices, a stage with an audience is found in a theater.",
     "label": "theater"},
    {"id": "2c4474cc67f1ff52823052a51e90aad8",
     "question": "What holds a lit cigarette when no one is around?",
     "choices": ["hand", "cool lip", "light fire", "ashtray", "carton"],
     "rationale": "A lit cigarette that nobody is holding has to rest on something made for it. Of the "
                  "above choices, an ashtray is made to hold cigarettes.",
     "label": "ashtray"},
    {"id": "a2961571b9e6f9041b8631d631d8d9e0",
     "question": "Sam went climbing but wasn't good at it. He was nimble and had what?",
     "choices": ["fingers", "dexterity", "skill", "muscles", "strength"],
     "rationale": "Being nimble means moving the hands and body quickly and deftly, even without much "
                  "skill. Of the above choices, dexterity is the word for that quality.",
     "label": "dexterity"},
]

SVAMP = [
    {"id": "svamp-train-707",
     "question": "Danny collects bottle caps. He found 63 bottle caps at the park while he threw away 51 old "
                 "ones. Now he has 33 bottle caps in his collection.\nHow many bottle caps did danny have at first?",
     "rationale": "Danny has 33 bottle caps now. Before throwing away 51 he had 33 + 51 = 84. Before finding "
                  "63 he had 84 - 63 = 21.",
     "label": "(33 + 51 - 63)"},
    {"id": "svamp-train-757",
     "question": "The school is planning a field trip. The school has 24 classrooms. There are 120 students in "
                 "the school with each classroom having the same number of students. There are 84 seats on "
                 "each school bus.\nHow many students are in each class?",
     "rationale": "The 120 students are shared equally among 24 classrooms. The seats on the bus do not matter "
                  "here. Each class has 120 / 24 = 5 students.",
     "label": "(120 / 24)"},
    {"id": "svamp-train-367",
     "question": "Haley grew some trees in her backyard. After a typhoon 5 died. If 12 trees were left\n"
                 "How many trees did she grow?",
     "rationale": "5 trees died and 12 trees were left, so she grew 5 + 12 = 17 trees.",
     "label": "(5 + 12)"},
    {"id": "svamp-train-115",
     "question": "Mary is baking a cake. The recipe calls for 5 cups of sugar and 14 cups of flour. She "
                 "already put in 11 cups of flour.\nHow many more cups of sugar than cups of flour does she "
                 "need to add now?",
     "rationale": "She still has to add 14 - 11 = 3 cups of flour and all 5 cups of sugar. So she needs "
                  "5 - 3 = 2 more cups of sugar than cups of flour.",
     "label": "(5 - (14 - 11))"},
    {"id": "svamp-train-389",
     "question": "He then went to see the oranges being harvested. He found out that they harvest 66 sacks "
                 "per day and that each sack containes 25 oranges.\nHow many oranges will they have after 87 "
                 "days of harvest?",
     "rationale": "In 87 days they harvest 66 * 87 = 5742 sacks. Each sack holds 25 oranges, so that is "
                  "5742 * 25 = 143550 oranges.",
     "label": "(66 * 87 * 25)"},
    {"id": "svamp-train-53",
     "question": "There are 8 different books and 10 different movies in the ' crazy silly school ' series. "
                 "If you read 19 of the books and watched 61 of the movies\nHow many more movies than books "
                 "are there in the ' crazy silly school ' series?",
     "rationale": "The series has 10 movies and 8 books; how many were read or watched does not matter. "
                  "There are 10 - 8 = 2 more movies than books.",
     "label": "(10 - 8)"},
    {"id": "svamp-train-13",
     "question": "Zachary did 51 push-ups in gym class today. David did 22 more push-ups than Zachary. John "
                 "did 4 push-ups less than David.\nHow many push-ups did John do?",
     "rationale": "David did 51 + 22 = 73 push-ups. John did 4 fewer than David, so he did 73 - 4 = 69.",
     "label": "(51 + 22 - 4)"},
    {"id": "svamp-train-794",
     "question": "A book has 31 chapters. Each chapter is 61 pages long.\nHow many pages does the book have "
                 "altogether?",
     "rationale": "There are 31 chapters of 61 pages each, so the book has 31 * 61 = 1891 pages.",
     "label": "(31 * 61)"},
]

ANLI1 = [
    {"premise": "Marisol Vega (born 12 March 1978) is a Chilean long-distance runner. She won the silver medal "
                "in the marathon at the 2007 Pan American Games in Rio de Janeiro and later coached the "
                "national athletics team.",
     "hypothesis": "Marisol Vega has won a medal at the Pan American Games.",
     "rationale": "The premise says she won the silver medal in the marathon at the 2007 Pan American Games. "
                  "A silver medal is a medal.",
     "label": "entailment"},
    {"premise": "The Harwick Bridge is a stone arch bridge over the River Tane in northern England. It was "
                "completed in 1821 and was closed to motor traffic in 1994, when a new concrete bridge opened "
                "a mile downstream.",
     "hypothesis": "Cars still cross the Harwick Bridge every day.",
     "rationale": "The premise says the bridge has been closed to motor traffic since 1994. Cars are motor "
                  "traffic, so they cannot cross it every day.",
     "label": "contradiction"},
    {"premise": "Blue Lantern is a 2011 independent drama film directed by Oskar Lind. It premiered at the "
                "Gothenburg Film Festival and was shot in twenty days on a budget of about $300,000.",
     "hypothesis": "Blue Lantern won an award at the Gothenburg Film Festival.",
     "rationale": "The premise says the film premiered at the Gothenburg Film Festival but says nothing about "
                  "awards. It may or may not have won one.",
     "label": "neutral"},
    {"premise": "Kestrel Records is an American record label founded in Austin, Texas, in 1996 by the brothers "
                "Dan and Lee Harmon. The label focuses on folk and bluegrass music.",
     "hypothesis": "Kestrel Records was founded in the twentieth century.",
     "rationale": "The label was founded in 1996, and 1996 is in the twentieth century.",
     "label": "entailment"},
    {"premise": "Tomasz Wrona (1931-2004) was a Polish chemist who spent his whole career at the University of "
                "Wroclaw, where he studied the chemistry of rare earth metals.",
     "hypothesis": "Tomasz Wrona lived to be over eighty years old.",
     "rationale": "He was born in 1931 and died in 2004, so he was at most 73 years old when he died, not "
                  "over eighty.",
     "label": "contradiction"},
    {"premise": "The Lowmoor Rovers are an amateur football club based in the village of Lowmoor. They play "
                "their home games at Mill Lane and were founded in 1952.",
     "hypothesis": "The Lowmoor Rovers have more than a thousand supporters.",
     "rationale": "The premise gives the club's village, ground and founding year. It says nothing about how "
                  "many supporters the club has.",
     "label": "neutral"},
    {"premise": "\"Paper Lanterns\" is a song by the British band The Quills, released in May 2015 as the lead "
                "single from their second album. It reached number 14 on the UK Singles Chart.",
     "hypothesis": "The Quills have made at least two albums.",
     "rationale": "The song was the lead single from the band's second album, so the band has made at least "
                  "two albums.",
     "label": "entailment"},
    {"premise": "Ellen Marsh is a fictional character in the television series Harbour Lights. She is played "
                "by Ruth Calder and first appeared in the episode broadcast on 4 April 1999.",
     "hypothesis": "Ellen Marsh first appeared on television in the twenty-first century.",
     "rationale": "Ellen Marsh first appeared in an episode broadcast in 1999, which is in the twentieth "
                  "century, not the twenty-first.",
     "label": "contradiction"},
]

ESNLI = [
    {"premise": "A man in a red jacket is shoveling snow off a driveway.",
     "hypothesis": "A man is clearing snow.",
     "rationale": "Shoveling snow off a driveway is a way of clearing snow.",
     "label": "entailment"},
    {"premise": "Two children are playing with a ball on a sandy beach.",
     "hypothesis": "The children are sitting in a classroom.",
     "rationale": "The children cannot be playing on a beach and sitting in a classroom at the same time.",
     "label": "contradiction"},
    {"premise": "A woman is reading a book on a park bench.",
     "hypothesis": "The woman is waiting for a friend.",
     "rationale": "Reading on a bench does not mean that she is waiting for a friend.",
     "label": "neutral"},
    {"premise": "A group of cyclists race down a mountain road.",
     "hypothesis": "People are riding bikes.",
     "rationale": "Cyclists racing down a road are people riding bikes.",
     "label": "entailment"},
    {"premise": "A chef is slicing vegetables in a busy kitchen.",
     "hypothesis": "The chef is asleep in bed.",
     "rationale": "Someone slicing vegetables in a kitchen is awake and not in bed.",
     "label": "contradiction"},
    {"premise": "An old man plays the violin on a street corner.",
     "hypothesis": "The man is playing for money.",
     "rationale": "Playing on a street corner does not mean that he is playing for money.",
     "label": "neutral"},
    {"premise": "A brown dog jumps to catch a frisbee in a field.",
     "hypothesis": "A dog is jumping.",
     "rationale": "A dog that jumps to catch a frisbee is jumping.",
     "label": "entailment"},
    {"premise": "Three women in hard hats are looking at plans at a building site.",
     "hypothesis": "The women are architects.",
     "rationale": "Women looking at plans at a building site could be engineers or builders, not necessarily "
                  "architects.",
     "label": "neutral"},
]

EXEMPLARS = {"cqa": CQA, "svamp": SVAMP, "anli1": ANLI1, "esnli": ESNLI}
